"""One destination: its submit buffer, its counters and what the scheduler needs to know of it.

``submit`` runs on the event loop thread that ended the span: it only appends to a bounded deque
and counts. Encoding and disk I/O happen on the writer thread, exporting on a pool worker.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter

from .config import DROP_BUFFER_FULL, DROP_CLOSED, DROP_ERROR, DestinationHealth
from .queues import Lane, Record

IDLE, QUEUED, RUNNING = "idle", "queued", "running"


class Counts(Protocol):
    """Where a destination's counts go (``reporting.Telemetry``). Declared here, not imported, so
    this module stays below the reporting module that reads destinations."""

    def outcome(self, dest: Destination, outcome: str, n: int) -> None: ...

    def dropped(self, dest: Destination, reason: str, n: int) -> None: ...


@dataclass
class Outage:
    """A run of failed attempts, kept on the destination by ``reporting.StatusLog``."""

    since: float  # monotonic
    logged_at: float
    delivered: int  # the destination's counters when it started failing
    retried: int
    dead_lettered: int
    attempts: int = 1


_LINGER_STEP = 0.05  # seconds: the first growth of a zero base delay


@dataclass(frozen=True, slots=True)
class LingerBounds:
    """What every destination's ``Linger`` keeps to: never below ``base`` nor above ``longest``
    seconds, aiming at ``target`` spans per export (``DeliveryConfig``)."""

    base: float
    longest: float
    target: int


class Linger:
    """How long this destination's next batch waits for more spans once its first span is stored.

    Each claimed run that waited for its batch is a sample of the arrival rate: the spans stored
    since the previous run over the time since then, or, when more, those that came while the batch
    waited over its wait (a burst after an idle hour is not taken for a quiet destination). A sample
    above the estimate replaces it, one below is averaged with it; the rate decides: a destination
    that would not get one more span within ``longest`` keeps the base delay (waiting gains nothing:
    a team calling every few seconds sees its call as soon as before); one that would waits
    ``target / rate``, within the bounds, at most twice the delay before. 300 teams at ~1,000
    calls/s get ~3 spans a second each: at 0.2 s nearly every span was an export request of its own
    (~0.4 ms of CPU each, most of a call's cost). A busy destination (``target / base`` spans a
    second or more) keeps the base delay.
    Changed under the scheduler's lock.
    """

    __slots__ = ("_claimed", "_rate", "at_push", "lingered", "seconds", "since")

    def __init__(self, bounds: LingerBounds) -> None:
        self.seconds = bounds.base
        self._rate: float | None = None  # spans per second
        self._claimed: float | None = None  # when the previous run was claimed
        self.lingered = False  # the queued run waits for its batch to fill (not: a backlog, a retry, full)
        self.since = 0.0  # when it was queued to wait...
        self.at_push = 0  # ...and how many spans were stored then

    def wait_from(self, now: float, stored: int) -> float:
        self.lingered, self.since, self.at_push = True, now, stored
        return self.seconds

    def claimed(self, stored: int, now: float, bounds: LingerBounds) -> float:
        """A run is claimed with ``stored`` spans waiting: the delay of the next batches."""
        previous, self._claimed = self._claimed, now
        if not self.lingered:  # a retry, a flush, a full batch or a backlog's next run tell no rate
            return self.seconds
        self.lingered = False
        sample = max(0, stored - self.at_push) / max(now - self.since, 1e-3)
        if previous is not None:
            sample = max(sample, stored / max(now - previous, 1e-3))
        # Up at once, down by halves: taking a busy destination for a quiet one costs its callers lag,
        # the other way round only CPU. (After the bench's warm-up, averaging a burst with the
        # warm-up's 0 kept 10 busy teams waiting ~0.8 s: lag p99 1.0 s.)
        rate = self._rate = sample if self._rate is None or sample > self._rate else (self._rate + sample) / 2
        if rate * bounds.longest < 1:
            self.seconds = bounds.base
        else:  # at most doubling: a burst's first batch holds its ramp, a few spans (else lag p99 1.3 s)
            wanted = min(bounds.longest, max(bounds.base, bounds.target / rate))
            self.seconds = min(wanted, max(2 * self.seconds, _LINGER_STEP))
        return self.seconds


class LagReservoir:
    """The last ``size`` delivery lags (span end -> acknowledged, in ms): a ring of 4-byte floats,
    512 bytes a destination, allocated at its first delivery. Percentiles are read by admins, seldom;
    the sender only writes, on the worker that owns the destination."""

    __slots__ = ("_filled", "_next", "_ring")
    size = 128

    def __init__(self) -> None:
        self._ring = array("f", bytes(4 * self.size))
        self._next = self._filled = 0

    def add(self, lag_ms: float) -> None:
        self._ring[self._next] = lag_ms
        self._next = (self._next + 1) % self.size
        self._filled = min(self._filled + 1, self.size)

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile ``q`` (0-100) of what is held; None before the first delivery."""
        if not self._filled:
            return None
        ordered = sorted(self._ring[: self._filled])
        return round(ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)], 1)


class Destination:
    # One per destination, so one or more per team: without slots each instance also carried a
    # ~1 KB attribute dict (30-odd attributes overflow the shared-key dict).
    __slots__ = (
        "_buffer_size", "_exporter_in_use", "_on_dirty", "_telemetry", "buffer", "closed", "dead_lettered",
        "delivered", "dirty", "dropped", "due", "exporter", "failed", "failures", "in_backoff", "key", "lag", "lane",
        "last_error", "last_failure_at", "last_status", "last_success_at", "linger", "lock", "moving", "name",
        "on_probation", "outage", "pending", "retried",
        "run_started", "sched", "spare", "spooled", "stalled", "stored_count", "stored_oldest", "stored_size",
        "suspect", "team", "token", "wants_spool",
    )  # fmt: skip

    def __init__(
        self,
        key: str,
        team: str | None,
        name: str,
        *,
        buffer_size: int,
        telemetry: Counts,
        on_dirty: Callable[[Destination], None],
    ) -> None:
        self.key, self.team, self.name = key, team, name
        self.exporter: SpanExporter | None = None
        self.lane: Lane | None = None  # set by the manager before the first span is accepted
        self.wants_spool = True  # what ``open`` asked for; the lane is chosen once started
        self.closed = True  # until an exporter is attached
        self.buffer: deque[tuple[float, ReadableSpan]] = deque()
        self.moving = 0  # taken from the buffer by the writer, not yet in the store (writer only)
        self.dirty = False
        self._buffer_size = buffer_size
        self._telemetry = telemetry
        self._on_dirty = on_dirty
        self.lock = threading.Lock()
        # Counters (exact; changed under ``lock``).
        self.delivered = self.retried = self.failed = self.dead_lettered = self.spooled = 0
        self.dropped: dict[str, int] = {}
        self.stored_count = self.stored_size = 0  # in the store, the batch in flight included
        self.stored_oldest: float | None = None
        self.last_error: str | None = None
        self.last_status: int | None = None
        self.last_success_at: float | None = None
        self.last_failure_at: float | None = None
        self.lag: LagReservoir | None = None  # built at the first delivery (``record_lag``)
        # Sending state (touched only by the worker running this destination).
        self.pending: list[list[Record]] = []  # batch in flight first, then 413 halves
        self.failures = 0  # consecutive failed attempts, drives the backoff
        self.outage: Outage | None = None  # since the first failure of a run of failures (StatusLog)
        # Scheduler state (changed under the scheduler's lock).
        self.sched, self.due, self.token = IDLE, 0.0, 0
        self.suspect = self.in_backoff = self.stalled = self.on_probation = self.spare = False
        self.run_started = 0.0
        self.linger: Linger | None = None  # set by the scheduler at the first push
        self._exporter_in_use: SpanExporter | None = None

    # -- exporter hand-over: the old one is shut down only once its batch is done ----------------
    def take_exporter(self) -> SpanExporter | None:
        with self.lock:
            self._exporter_in_use = self.exporter
            return self.exporter

    def return_exporter(self, exporter: SpanExporter) -> bool:
        """``True`` when ``exporter`` was replaced meanwhile and is now the caller's to retire."""
        with self.lock:
            self._exporter_in_use = None
            return exporter is not self.exporter

    def swap_exporter(self, new: SpanExporter | None) -> SpanExporter | None:
        """Install ``new``; returns the old exporter if nobody is using it (retire it), else None."""
        with self.lock:
            old, self.exporter = self.exporter, new
            self.closed = new is None
            return None if old is None or old is self._exporter_in_use else old

    # -- request path --------------------------------------------------------------------------
    def submit(self, span: ReadableSpan) -> None:
        """O(1), never blocks on I/O, never raises: every refused span is counted."""
        try:
            if self.closed:
                self.count_drop(DROP_CLOSED)
            elif len(self.buffer) >= self._buffer_size:
                self.count_drop(DROP_BUFFER_FULL)
            else:
                self.buffer.append((time.time(), span))
                if not self.dirty:
                    self.dirty = True
                    self._on_dirty(self)
        except Exception:  # the caller is span.end(); nothing may escape
            self._safe_drop()

    def _safe_drop(self) -> None:
        with contextlib.suppress(Exception):  # counting itself failed; nothing left to do
            self.count_drop(DROP_ERROR)

    # -- counting ------------------------------------------------------------------------------
    def count_drop(self, reason: str, n: int = 1) -> None:
        with self.lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + n
        self._telemetry.dropped(self, reason, n)

    def count(self, outcome: str, n: int) -> None:
        with self.lock:
            match outcome:  # each counter named: a mistyped outcome cannot write another attribute
                case "delivered":
                    self.delivered += n
                case "retried":
                    self.retried += n
                case "failed":
                    self.failed += n
                case "dead_lettered":
                    self.dead_lettered += n
                case _:
                    raise ValueError(f"not a delivery outcome: {outcome!r}")
        self._telemetry.outcome(self, outcome, n)

    def stored(self, added: int, size: int, oldest: float | None = None) -> None:
        with self.lock:
            if self.stored_count == 0 or self.stored_oldest is None:
                self.stored_oldest = oldest
            self.stored_count += added
            self.stored_size += size
            if self.stored_count == 0:
                self.stored_oldest = None

    def record_lag(self, spans: list[ReadableSpan | None], now: float) -> None:
        """Span end -> now, for each delivered span (the sender's thread; under ``lock`` for readers)."""
        with self.lock:
            lag = self.lag = self.lag or LagReservoir()
            for span in spans:
                if span is not None and span.end_time:
                    lag.add(max(0.0, now - span.end_time / 1e9) * 1000)

    def queued(self) -> int:
        return len(self.buffer) + self.moving + self.stored_count

    def has_work(self) -> bool:
        return self.stored_count > 0 or bool(self.pending)

    # -- health --------------------------------------------------------------------------------
    def health(self, now: float) -> DestinationHealth:
        with self.lock:
            return DestinationHealth(
                key=self.key,
                team=self.team,
                name=self.name,
                queued=self.queued(),
                delivered=self.delivered,
                retried=self.retried,
                failed=self.failed,
                dead_lettered=self.dead_lettered,
                dropped=dict(self.dropped),
                oldest_pending_age_s=self._oldest_age(now),
                last_error=self.last_error,
                last_success_at=self.last_success_at,
                state=self.state(),
                spooled=self.spooled,
                last_failure_at=self.last_failure_at,
                last_status=self.last_status,
                retrying=sum(len(b) for b in list(self.pending)) if self.in_backoff else 0,
                lag_p50_ms=None if self.lag is None else self.lag.percentile(50),
                lag_p99_ms=None if self.lag is None else self.lag.percentile(99),
            )

    def _oldest_age(self, now: float) -> float | None:
        candidates = [self.stored_oldest]
        if self.pending and self.pending[0]:
            candidates.append(self.pending[0][0].at)
        with contextlib.suppress(IndexError):
            candidates.append(self.buffer[0][0])
        known = [c for c in candidates if c is not None]
        return max(0.0, now - min(known)) if known else None

    def state(self) -> str:
        if self.exporter is None:
            return "orphaned"
        if self.sched == RUNNING:
            return "stalled" if self.stalled else "sending"
        return "backoff" if self.in_backoff else "idle"
