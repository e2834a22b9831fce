"""One export attempt for one destination, and what its outcome means.

Success acknowledges the batch in the store. A retryable failure keeps the batch in flight and
asks for a backoff (full jitter, never shorter than Retry-After). A 413 splits the batch in
halves that are sent next; a single span still too large, or a permanent failure, goes to the
dead-letter store. An exporter that raises instead of returning FAILURE is retried with backoff
and logged with its traceback (``contracts.failures.unrecognised``): an error nobody understood
must not send spans to the dead-letter table unseen. The pool guarantees one run at a time per
destination.
"""

from __future__ import annotations

import logging
import random
import time

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from contracts.failures import ExportFailure, unrecognised

from .codec import CorruptRecord, decode_span
from .config import DROP_CORRUPT, DeliveryConfig
from .destination import Destination
from .queues import Record, Store
from .reporting import StatusLog, short_reason

_UNKNOWN = ExportFailure(retryable=True, detail="export failed without saying why", reason="export failed")


class Sender:
    def __init__(self, config: DeliveryConfig, logger: logging.Logger, rng: random.Random) -> None:
        self._config, self._log, self._rng = config, logger, rng
        self._status = StatusLog(logger, config.failing_log_interval)

    def run(self, dest: Destination) -> float | None:
        """Seconds until this destination should run again; ``None`` when it has nothing to send."""
        exporter = dest.take_exporter()
        if exporter is None:
            return None
        try:
            batch = self._next_batch(dest)
            failure = self._export(exporter, batch, dest.key) if batch else None
        finally:
            if dest.return_exporter(exporter):
                retire(exporter, self._log)  # replaced or closed while its batch was in flight
        if not batch:
            return None
        if failure is None:
            return self._delivered(dest, batch)
        return self._failed(dest, batch, failure)

    def _next_batch(self, dest: Destination) -> list[Record]:
        lane = dest.lane
        while not dest.pending and lane is not None:
            records = lane.store.read(dest.key, self._config.max_batch)
            if not records:
                return []
            good = self._decoded(dest, records) if lane.encodes else records
            if good:
                dest.pending.append(good)
        return dest.pending[0] if dest.pending else []

    def _decoded(self, dest: Destination, records: list[Record]) -> list[Record]:
        bad = []
        for record in records:
            if record.span is not None:  # the spool still held the submitted span
                continue
            try:
                record.span = decode_span(record.data or b"")
            except CorruptRecord:
                bad.append(record)
        if bad:
            _store(dest).quarantine(dest.key, bad, DROP_CORRUPT)
            dest.stored(-len(bad), -sum(r.size for r in bad))
            dest.count_drop(DROP_CORRUPT, len(bad))
            self._log.error("destination %s: %d corrupt spool records quarantined", dest.key, len(bad))
        return [r for r in records if r.span is not None]

    def _export(self, exporter: SpanExporter, batch: list[Record], key: str) -> ExportFailure | None:
        started = time.monotonic()
        try:
            result = exporter.export([r.span for r in batch])  # type: ignore[misc]
        except Exception as exc:  # exporters must not raise; one that does is retried, and said so
            self._log.warning("destination %s: its exporter raised %s instead of returning FAILURE; retrying",
                              key, type(exc).__name__, exc_info=True)
            return unrecognised(exc)
        if result == SpanExportResult.SUCCESS:
            return None
        failure = getattr(exporter, "last_failure", None) or _UNKNOWN
        elapsed = time.monotonic() - started
        if failure.status is None and elapsed >= self._config.export_timeout:
            return ExportFailure(retryable=True, detail=f"timed out after {elapsed:.1f}s: {failure.detail}",
                                 reason=f"timed out after {elapsed:.1f}s")
        return failure

    def _delivered(self, dest: Destination, batch: list[Record]) -> float | None:
        _store(dest).ack(dest.key, batch)
        self._remove(dest, batch)
        dest.count("delivered", len(batch))
        now = time.time()
        dest.record_lag([r.span for r in batch], now)
        with dest.lock:
            dest.last_success_at = now
        self._status.delivered(dest)
        dest.failures, dest.suspect, dest.in_backoff = 0, False, False
        return 0.0 if dest.has_work() else None

    def _failed(self, dest: Destination, batch: list[Record], failure: ExportFailure) -> float | None:
        dest.count("failed", len(batch))
        with dest.lock:
            # Shown by /health/destinations and a team's ledger: the short reason, never the
            # destination's body (an API-set callback aimed at an internal service must not read its
            # pages back), even from an exporter whose failure names no reason.
            dest.last_error = short_reason(failure)
            dest.last_status, dest.last_failure_at = failure.status, time.time()
        if failure.too_large and len(batch) > 1:
            half = len(batch) // 2
            dest.pending[0:1] = [batch[:half], batch[half:]]
            dest.count("retried", len(batch))
            return 0.0
        if failure.retryable and not failure.too_large:
            dest.count("retried", len(batch))
            dest.failures += 1
            dest.suspect = dest.in_backoff = True
            self._status.failed(dest, failure)
            return self._backoff(dest.failures, failure.retry_after)
        after = self._dead_letter(dest, batch, failure)
        self._status.failed(dest, failure)  # it answered, but refuses these spans: not delivering either
        return after

    def _dead_letter(self, dest: Destination, batch: list[Record], failure: ExportFailure) -> float | None:
        _store(dest).dead_letter(dest.key, batch, failure.status, failure.detail, short_reason(failure))
        self._remove(dest, batch)
        dest.count("dead_lettered", len(batch))
        self._status.dead_lettered(dest, len(batch), failure)
        dest.failures, dest.suspect, dest.in_backoff = 0, False, False  # it answered: it is up
        return 0.0 if dest.has_work() else None

    def _remove(self, dest: Destination, batch: list[Record]) -> None:
        """Forget a batch the store no longer holds (acknowledged or dead-lettered)."""
        dest.pending.pop(0)
        dest.stored(-len(batch), -sum(r.size for r in batch))
        with dest.lock:
            if dest.stored_count and not dest.pending:
                dest.stored_oldest = batch[-1].at  # the next record is no older; refreshed on read

    def _backoff(self, failures: int, retry_after: float | None) -> float:
        ceiling = min(self._config.max_backoff, self._config.initial_backoff * 2 ** min(failures - 1, 30))
        delay = self._rng.uniform(0.0, ceiling)
        return max(delay, retry_after or 0.0)


def _store(dest: Destination) -> Store:
    assert dest.lane is not None  # a destination with a batch has a lane
    return dest.lane.store


def retire(exporter: SpanExporter, logger: logging.Logger) -> None:
    try:
        exporter.shutdown()
    except Exception:  # a failing shutdown must not stop delivery of the rest
        logger.exception("exporter shutdown failed")
