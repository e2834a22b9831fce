"""The last hour of each destination's delivery counters, for the admin page's charts.

The delivery layer keeps counters since start, not their history. ``DeliveryHistory`` samples them
(the same ``DeliveryManager.health()`` ``/health/destinations`` reads) every ``interval`` seconds in
one background task, read in a worker thread as the delivery routes read them. Nothing is added to a
call's path; memory is bounded by destinations x (window / interval) samples of five numbers (120 an
hour at 30 s), and a destination that is gone is forgotten at the next sample. Each worker samples
its own counters, as each answers its own ledger.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import NamedTuple

from processors.delivery import DeliveryManager, DestinationHealth

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 30.0
WINDOW_SECONDS = 3600.0


class Sample(NamedTuple):
    t: float  # unix seconds
    delivered: int
    failed: int
    dead_lettered: int
    lag_p50_ms: float | None


class DeliveryHistory:
    __slots__ = ("_clock", "_delivery", "_rings", "interval", "window")

    def __init__(self, delivery: DeliveryManager, *, interval: float = INTERVAL_SECONDS,
                 window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self._delivery, self._clock = delivery, clock
        self.interval, self.window = interval, window
        self._rings: dict[str, deque[Sample]] = {}

    def record(self, health: Iterable[DestinationHealth]) -> None:
        """One sample per open destination; the rings of destinations no longer listed are dropped."""
        now = self._clock()
        size = max(1, int(self.window / self.interval) + 1)
        rings: dict[str, deque[Sample]] = {}
        for h in health:
            if h.state == "orphaned":
                continue
            ring = self._rings.get(h.key) or deque(maxlen=size)
            ring.append(Sample(now, h.delivered, h.failed, h.dead_lettered, h.lag_p50_ms))
            rings[h.key] = ring
        self._rings = rings  # replaced whole: a reader on the loop never sees it half built

    def samples(self, key: str) -> list[dict[str, float | int | None]]:
        ring = self._rings.get(key, ())
        oldest = self._clock() - self.window
        return [s._asdict() for s in ring if s.t >= oldest]

    async def run(self) -> None:
        """Sample now and then every ``interval`` until cancelled (the app's lifespan owns the task)."""
        while True:
            try:
                self.record(await asyncio.to_thread(self._delivery.health))
            except Exception as exc:  # a failed read costs one sample, never the sampler
                log.warning("delivery history: could not read delivery health: %s", type(exc).__name__)
            await asyncio.sleep(self.interval)
