"""What the delivery layer tells an operator: metrics, rate-limited drop logs, state-change lines.

Drops are counted where they happen (possibly on the event loop); the log lines are written by the
writer thread calling ``log_drops`` so the request path never formats or writes a log record.

``StatusLog`` writes one log line per change of a destination's state: healthy -> failing ->
(still failing) -> recovered. ``/health/destinations`` shows the counters; an operator watching the
log needs to hear when a destination stops taking spans, that it is still down, and when it came
back and caught up. The sender calls ``failed`` / ``delivered`` after each attempt (on the worker
that owns the destination, so the outage record needs no lock). The still-failing reminder rides on
the failed attempts: a failing destination is retried at least every ``max_backoff`` seconds, finer
than the reminder. The lines carry ``ExportFailure.reason``, never a destination's response body
(the dead-letter line too).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from contracts.failures import ExportFailure

from .config import ATTR_DESTINATION, ATTR_OUTCOME, ATTR_TEAM, DEAD_LETTERS_DROPPED_METRIC, QUEUED_METRIC, SPANS_METRIC
from .destination import Destination, Outage

_OUTCOMES = {"delivered", "retried", "failed", "dead_lettered"}


def _attributes(dest: Destination) -> dict[str, str]:
    attrs = {ATTR_DESTINATION: dest.key}
    if dest.team is not None:
        attrs[ATTR_TEAM] = dest.team
    return attrs


class Telemetry:
    def __init__(
        self,
        meter: Meter | None,
        logger: logging.Logger,
        destinations: Callable[[], Iterable[Destination]],
        log_interval: float,
    ) -> None:
        self._log = logger
        self._interval = log_interval
        self._destinations = destinations
        self._lock = threading.Lock()
        self._unlogged: dict[str, tuple[Destination, dict[str, int]]] = {}
        self._last_logged: dict[str, float] = {}
        self._spans = self._dead_dropped = None
        if meter is not None:
            self._spans = meter.create_counter(SPANS_METRIC, unit="{span}", description="Spans by delivery outcome")
            self._dead_dropped = meter.create_counter(
                DEAD_LETTERS_DROPPED_METRIC, unit="{span}",
                description="Dead letters dropped by retention: expired (too old) or over_limit (too many)")
            meter.create_observable_gauge(
                QUEUED_METRIC,
                callbacks=[self._observe_queued],
                unit="{span}",
                description="Spans accepted for a destination and not yet acknowledged",
            )

    def outcome(self, dest: Destination, outcome: str, n: int) -> None:
        assert outcome in _OUTCOMES, outcome
        if self._spans is not None and n:
            self._spans.add(n, {ATTR_OUTCOME: outcome, **_attributes(dest)})

    def dropped(self, dest: Destination, reason: str, n: int) -> None:
        if self._spans is not None:
            self._spans.add(n, {ATTR_OUTCOME: "dropped", "reason": reason, **_attributes(dest)})
        with self._lock:
            counts = self._unlogged.setdefault(dest.key, (dest, {}))[1]
            counts[reason] = counts.get(reason, 0) + n

    def dead_letters_dropped(self, key: str, team: str | None, reason: str, n: int) -> None:
        if self._dead_dropped is not None and n:
            attrs = {ATTR_DESTINATION: key, "reason": reason}
            if team is not None:
                attrs[ATTR_TEAM] = team
            self._dead_dropped.add(n, attrs)

    def log_drops(self, now: float | None = None) -> None:
        """At most one line per destination per interval, with the counts since its last line."""
        now = time.monotonic() if now is None else now
        with self._lock:
            due = [k for k in self._unlogged if now - self._last_logged.get(k, -1e18) >= self._interval]
            lines = [self._unlogged.pop(k) for k in due]
            for key in due:
                self._last_logged[key] = now
        for dest, counts in lines:
            self._log.warning("delivery dropped spans: destination=%s team=%s counts=%s", dest.key, dest.team, counts)

    def _observe_queued(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(d.queued(), _attributes(d)) for d in list(self._destinations())]


class StatusLog:
    def __init__(self, logger: logging.Logger, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._log, self._interval, self._clock = logger, interval, clock

    def failed(self, dest: Destination, failure: ExportFailure) -> None:
        now = self._clock()
        outage = dest.outage
        if outage is None:
            dest.outage = Outage(now, now, dest.delivered, dest.retried, dest.dead_lettered)
            then = "retried with backoff" if failure.retryable else "refused spans are dead-lettered"
            self._log.warning("destination %s: failing: %s; %d spans queued, %s", dest.key, short_reason(failure),
                              dest.queued(), then)
            return
        outage.attempts += 1
        if now - outage.logged_at >= self._interval:
            outage.logged_at = now
            self._log.warning("destination %s: still failing after %s: %s; queued=%d retried=%d dead_lettered=%d "
                              "(%d attempts)", dest.key, _duration(now - outage.since),
                              short_reason(failure), dest.queued(), dest.retried - outage.retried,
                              dest.dead_lettered - outage.dead_lettered, outage.attempts)

    def dead_lettered(self, dest: Destination, count: int, failure: ExportFailure) -> None:
        # The reason, not ``detail``: a destination that echoes the request quotes the team's own
        # headers (a generic_logger_headers token) into its answer, and the log is read by many.
        self._log.warning("destination %s: %d spans dead-lettered: %s", dest.key, count, short_reason(failure))

    def delivered(self, dest: Destination) -> None:
        outage = dest.outage
        if outage is None:
            return
        dest.outage = None
        self._log.info("destination %s: recovered after %s down: %d spans caught up, %d still queued, "
                          "%d dead-lettered meanwhile", dest.key, _duration(self._clock() - outage.since),
                          dest.delivered - outage.delivered, dest.queued(), dest.dead_lettered - outage.dead_lettered)


def short_reason(failure: ExportFailure) -> str:
    """The short reason; never ``detail`` of a failure that has a status (it may quote the answer's body)."""
    if failure.reason:
        return failure.reason
    return f"HTTP {failure.status}" if failure.status is not None else failure.detail


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
