"""Metrics and rate-limited drop logs of the delivery layer.

Drops are counted where they happen (possibly on the event loop); the log lines are written by the
writer thread calling ``log_drops`` so the request path never formats or writes a log record.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from .config import ATTR_DESTINATION, ATTR_OUTCOME, ATTR_TEAM, QUEUED_METRIC, SPANS_METRIC

if TYPE_CHECKING:
    from .destination import Destination

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
        self._spans = None
        if meter is not None:
            self._spans = meter.create_counter(SPANS_METRIC, unit="{span}", description="Spans by delivery outcome")
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
