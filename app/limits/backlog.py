"""Settlements and slot releases the counters missed while their backend could not be reached, replayed
in order once it answers again, so the shared counters are exact again after an outage Redis (or
PostgreSQL) itself survived. The spend itself never waits here: the ledger has every row.

Each entry is idempotent on the backend (a settlement counts once per request id, a release frees a slot
that may already be free), so an entry replayed after a timeout that in fact succeeded adds nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

from app.limits.model import Check, CounterBackend
from app.store import SpendRow

logger = logging.getLogger("spangate.limits")
MAX_BACKLOG = 100_000  # about 40 MB of rows at worst; beyond it the oldest are dropped, counted and logged


@dataclass(frozen=True, slots=True)
class Missed:
    request_id: str
    checks: tuple[Check, ...]
    at: float
    row: SpendRow | None  # None: only the call's parallel slot is to be freed


class Backlog:
    def __init__(self, limit: int = MAX_BACKLOG) -> None:
        self._items: deque[Missed] = deque()
        self._limit = limit
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, request_id: str, checks: tuple[Check, ...], at: float, row: SpendRow | None) -> None:
        if len(self._items) >= self._limit:
            self._items.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                logger.warning("limits backlog full (%d): %d missed settlements dropped; the store's spend stays "
                               "exact, the shared counters may lag until the period ends", self._limit, self.dropped)
        self._items.append(Missed(request_id, checks, at, row))

    async def replay(self, backend: CounterBackend, timeout: float) -> int:
        """Run the entries in order; how many ran. Raises what the backend raised, the entry kept first."""
        done = 0
        while self._items:
            item = self._items[0]
            if item.row is None:
                await asyncio.wait_for(backend.release(item.request_id, item.checks), timeout)
            else:
                await asyncio.wait_for(backend.settle(item.request_id, item.checks, item.at, item.row), timeout)
            self._items.popleft()
            done += 1
        return done
