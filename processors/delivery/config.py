"""Settings and read-only views of the delivery layer; no behaviour lives here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Metric names are owned here so dashboards and the /metrics route have one place to look.
SPANS_METRIC = "spangate.delivery.spans"
QUEUED_METRIC = "spangate.delivery.queued"
DEAD_LETTERS_DROPPED_METRIC = "spangate.delivery.dead_letters_dropped"
ATTR_OUTCOME = "outcome"
ATTR_DESTINATION = "spangate.destination"
ATTR_TEAM = "spangate.team"

# Why a span was dropped (keys of DestinationHealth.dropped).
DROP_BUFFER_FULL = "buffer_full"  # the in-memory buffer ahead of the spool was full
DROP_SPOOL_FULL = "spool_full"  # the per-destination cap was hit: oldest queued span removed
DROP_CORRUPT = "corrupt"  # a spooled record could not be decoded: quarantined
DROP_CLOSED = "closed"  # submitted to a destination that was closed or after shutdown
DROP_ERROR = "error"  # an unexpected error inside submit or while encoding
DROP_SPOOL_ERROR = "spool_error"  # the spool write itself failed (disk full, I/O error)

# Why a dead letter was dropped by the retention sweep (the ``reason`` of DEAD_LETTERS_DROPPED_METRIC).
EXPIRED = "expired"  # older than ``dead_letter_retention``
OVER_LIMIT = "over_limit"  # beyond ``dead_letters_per_destination``, oldest first


@dataclass(frozen=True)
class DeliveryConfig:
    """How the delivery layer queues, spools and sends.

    ``durable=False`` keeps everything in memory. Loss bound in that mode: a crash or kill loses
    every span not yet acknowledged, at most ``2 * memory_queue_size`` per destination (the submit
    buffer plus the queue); a clean ``shutdown`` loses what it could not send within
    ``shutdown_flush_timeout``. In memory mode the per-destination cap is ``memory_queue_size``
    spans (drop-oldest), not ``max_spool_bytes``.

    In durable mode a span counts as accepted once its spool transaction committed. SQLite runs
    with ``synchronous=NORMAL`` in WAL mode: that survives kill -9 of the process; a power cut
    may lose the last transactions since the last checkpoint.
    """

    spool_dir: Path
    durable: bool = True
    max_spool_bytes: int = 1 << 30  # encoded bytes per destination; beyond it drop-oldest, counted
    memory_queue_size: int = 10_000
    # Spans kept in memory beside their spool rows, per destination, so the sender skips decoding.
    # Enough for a healthy destination's queue (a few batches); a backlog beyond it (a destination
    # down) stays on disk only and is decoded when read, so memory does not grow with the backlog.
    cached_spans: int = 2048
    # The writer commits at most once per interval: what arrives meanwhile shares the transaction.
    # Also the longest a submitted span waits in memory before it is durable (the kill -9 bound).
    commit_interval: float = 0.02
    max_batch: int = 512
    batch_delay: float = 0.2
    # A quiet destination's batch waits longer than ``batch_delay``, up to this, to gather about
    # ``linger_target`` spans per export, when waiting this long would gather at least one more
    # (``destination.Linger``); one receiving ``linger_target / batch_delay`` spans a second or more
    # keeps ``batch_delay``. At most ``batch_delay`` (the default, 0): every batch waits ``batch_delay``.
    max_batch_delay: float = 0.0
    # 4: 10 teams at ~300 calls/s (25 spans a second each) waited up to 0.4 s with 8 (lag p99 0.5-0.66 s
    # against 0.23 s) for ~0.03 ms of CPU per call; the quiet destinations this is for wait the bound either way.
    linger_target: int = 4
    # An export running this long is counted as timed out; the export transport ends it then
    # (app.server.factory gives it this deadline).
    export_timeout: float = 10.0
    initial_backoff: float = 0.5
    max_backoff: float = 60.0
    workers: int = 8
    shutdown_flush_timeout: float = 10.0
    # An export still running after ``stall_after`` seconds gets a spare thread started in its
    # place (at most ``workers * ceil(export_timeout / stall_after)`` spares: every stall the
    # export deadline lets run at once), so slow destinations cannot starve healthy ones.
    stall_after: float = 1.0
    # Destinations whose last attempt failed or stalled share at most this many threads.
    probation_workers: int = 2
    drop_log_interval: float = 10.0
    # A failing destination logs when it starts failing, when it recovers, and this often in between.
    failing_log_interval: float = 300.0
    max_spool_slots: int = 64
    # While the disk refuses the spool's writes (spans held in memory), how often it is tried again.
    spool_retry_interval: float = 1.0
    # Dead letters are kept this long (seconds) and at most this many per destination, oldest dropped
    # first and counted; a background sweep enforces both (``deadletter/sweep.py``).
    dead_letter_retention: float = 7 * 86400.0
    dead_letters_per_destination: int = 10_000


@dataclass(frozen=True)
class DestinationHealth:
    """One destination's counters; numbers are exact counts of spans since this process started."""

    key: str
    team: str | None
    name: str
    queued: int  # submitted or spooled, not yet acknowledged (includes the batch in flight)
    delivered: int
    retried: int  # spans put back for another attempt after a retryable failure or a 413 split
    failed: int  # spans of export attempts that failed, whatever happened next
    dead_lettered: int
    dropped: dict[str, int] = field(default_factory=dict)
    oldest_pending_age_s: float | None = None
    last_error: str | None = None
    last_success_at: float | None = None  # unix seconds
    state: str = "idle"  # idle | sending | backoff | stalled | orphaned
    spooled: int = 0  # spans committed to the spool (or memory queue) by this process
    last_failure_at: float | None = None  # unix seconds of the last failed attempt
    last_status: int | None = None  # the HTTP status of that attempt, when it had one
    retrying: int = 0  # spans of the batch waiting out a backoff (0 when not in backoff)
    lag_p50_ms: float | None = None  # span end -> acknowledged, over the last deliveries (``LagReservoir``)
    lag_p99_ms: float | None = None


@dataclass(frozen=True)
class DeadLetter:
    """One refused span as the listing shows it: ids, model and times, never its content.
    ``detail`` may quote the destination's answer (operator only); ``reason`` is the short form."""

    key: str
    span_id: int
    status: int | None
    detail: str
    at: float  # unix seconds it was dead-lettered
    trace_id: int = 0
    model: str | None = None
    ended_at: float | None = None  # unix seconds the span (the call) ended
    reason: str = ""


@dataclass(frozen=True)
class Selection:
    """Which dead letters a replay takes: all of them, or those whose span ended within
    [``since``, ``until``] (unix seconds) and/or whose span id is listed."""

    since: float | None = None
    until: float | None = None
    span_ids: frozenset[int] | None = None

    @property
    def everything(self) -> bool:
        return self.since is None and self.until is None and self.span_ids is None

    def takes(self, span_id: int, ended_at: float | None) -> bool:
        if self.span_ids is not None and span_id not in self.span_ids:
            return False
        if ended_at is None:
            return self.since is None and self.until is None
        return (self.since is None or ended_at >= self.since) and (self.until is None or ended_at <= self.until)


@dataclass(frozen=True)
class SpoolHealth:
    """The durable lane's disk: ``ok``, ``failing`` (spans held in memory meanwhile) or ``off`` (memory-only)."""

    state: str
    failing_since: float | None = None  # unix seconds
    reason: str | None = None  # the database's error, e.g. "OperationalError: database or disk is full"
    held_in_memory: int = 0  # spans the disk refused, waiting in memory (sent, or spooled when it works again)
    dropped: int = 0  # held spans dropped during this outage (oldest first, beyond the per-destination bound)
