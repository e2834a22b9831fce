"""The retention sweep: a daemon thread that drops dead letters past their age or count, counted.

It wakes every ``interval`` (a tenth of the retention, between 50 ms and a minute: a week's
retention is checked each minute, a test's half second in time) and asks each store to sweep. What
was dropped goes to ``spangate.delivery.dead_letters_dropped`` (by destination and reason) and to
one log line per sweep that dropped anything. Nothing on the submit path waits for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

Dropped = dict[str, dict[str, int]]  # destination key -> reason -> count
MIN_INTERVAL, MAX_INTERVAL = 0.05, 60.0


def sweep_interval(retention: float) -> float:
    return min(MAX_INTERVAL, max(MIN_INTERVAL, retention / 10))


class Sweeper:
    def __init__(self, sweep: Callable[[float], Dropped], report: Callable[[Dropped], None], retention: float,
                 logger: logging.Logger) -> None:
        self._sweep, self._report, self._retention, self._log = sweep, report, retention, logger
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spangate-dead-letter-sweep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)

    def run_once(self) -> Dropped:
        dropped = self._sweep(time.time() - self._retention)
        if dropped:
            self._report(dropped)
            total = sum(n for reasons in dropped.values() for n in reasons.values())
            self._log.warning("dead letters: %d dropped by retention (older than %gs or beyond the per-destination "
                              "bound): %s", total, self._retention, dropped)
        return dropped

    def _run(self) -> None:
        interval = sweep_interval(self._retention)
        while not self._stop.wait(interval):
            try:
                self.run_once()
            except Exception:  # a failed sweep is tried again next time; the letters stay meanwhile
                self._log.exception("dead letters: the retention sweep failed")
