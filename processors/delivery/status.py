"""One log line per change of a destination's state: healthy -> failing -> (still failing) -> recovered.

``/health/destinations`` shows the counters; an operator watching the log needs to hear when a
destination stops taking spans, that it is still down, and when it came back and caught up. The
sender calls ``failed`` / ``delivered`` after each attempt (on the worker that owns the destination,
so the outage record needs no lock). The still-failing reminder rides on the failed attempts: a
failing destination is retried at least every ``max_backoff`` seconds, finer than the reminder.
The lines carry ``ExportFailure.reason``, never a destination's response body (the dead-letter line too).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from contracts.failures import ExportFailure

from .destination import Destination


@dataclass
class Outage:
    since: float  # monotonic
    logged_at: float
    delivered: int  # the destination's counters when it started failing
    retried: int
    dead_lettered: int
    attempts: int = 1


class StatusLog:
    def __init__(self, logger: logging.Logger, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._log, self._interval, self._clock = logger, interval, clock

    def failed(self, dest: Destination, failure: ExportFailure) -> None:
        now = self._clock()
        outage = dest.outage
        if outage is None:
            dest.outage = Outage(now, now, dest.delivered, dest.retried, dest.dead_lettered)
            then = "retried with backoff" if failure.retryable else "refused spans are dead-lettered"
            self._log.warning("destination %s: failing: %s; %d spans queued, %s", dest.key, _reason(failure),
                              dest.queued(), then)
            return
        outage.attempts += 1
        if now - outage.logged_at >= self._interval:
            outage.logged_at = now
            self._log.warning("destination %s: still failing after %s: %s; queued=%d retried=%d dead_lettered=%d "
                              "(%d attempts)", dest.key, _duration(now - outage.since),
                              _reason(failure), dest.queued(), dest.retried - outage.retried,
                              dest.dead_lettered - outage.dead_lettered, outage.attempts)

    def dead_lettered(self, dest: Destination, count: int, failure: ExportFailure) -> None:
        # The reason, not ``detail``: a destination that echoes the request quotes the team's own
        # headers (a generic_logger_headers token) into its answer, and the log is read by many.
        self._log.warning("destination %s: %d spans dead-lettered: %s", dest.key, count, _reason(failure))

    def delivered(self, dest: Destination) -> None:
        outage = dest.outage
        if outage is None:
            return
        dest.outage = None
        self._log.info("destination %s: recovered after %s down: %d spans caught up, %d still queued, "
                          "%d dead-lettered meanwhile", dest.key, _duration(self._clock() - outage.since),
                          dest.delivered - outage.delivered, dest.queued(), dest.dead_lettered - outage.dead_lettered)


def _reason(failure: ExportFailure) -> str:
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
