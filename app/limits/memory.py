"""The in-process counter backend: exact for one process (a single instance on SQLite, or on one
PostgreSQL with no other instance).

- budgets: the spend of each (counter, period), read once from the store (``period_spend``) the first
  time a call is checked against it, then kept here: every settle adds its cost. A call settled for a
  counter not read yet adds nothing here (the store has it, through the journal, when it is read).
- rpm: a sliding-window log, the admission times of the last 60 s (a deque per counter).
- tpm: a sliding window of (settle time, tokens), added when a call settles.
- parallel: the request ids holding a slot, each with a lease expiry (a lost release frees itself).

Admission awaits only the store reads; the checks and the counting after them run without an await,
so concurrent admissions on one event loop are counted exactly.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import Protocol

from app.calls.limits import nanos_to_usd
from app.limits.model import WINDOW_SECONDS, Check, Reason, Refusal
from app.store import SpendRow

LEASE_SECONDS = 3600.0
_SETTLED_MEMORY = 65536  # request ids remembered, so a settle repeated adds once


class SpendSource(Protocol):
    async def period_spend(self, counters: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]: ...


def _wait(oldest: float, now: float) -> int:
    """Seconds until an entry made at ``oldest`` leaves the window: ceil, at least 1."""
    return max(1, math.ceil(oldest + WINDOW_SECONDS - now))


class _Tokens:
    """One counter's tpm window: (time, tokens) entries and their running sum."""

    __slots__ = ("entries", "total")

    def __init__(self) -> None:
        self.entries: deque[tuple[float, int]] = deque()
        self.total = 0

    def prune(self, now: float) -> None:
        while self.entries and self.entries[0][0] <= now - WINDOW_SECONDS:
            self.total -= self.entries.popleft()[1]

    def retry_after(self, limit: int, now: float) -> int:
        left = self.total
        for at, tokens in self.entries:
            left -= tokens
            if left < limit:
                return _wait(at, now)
        return 1


class MemoryBackend:
    name = "memory"

    def __init__(self, store: SpendSource, *, lease_seconds: float = LEASE_SECONDS) -> None:
        self._store = store
        self._lease = lease_seconds
        self._spend: dict[tuple[str, int], int] = {}
        self._period: dict[str, int] = {}  # counter -> the latest period seen, older ones dropped
        self._calls: dict[str, deque[float]] = {}
        self._tokens: dict[str, _Tokens] = {}
        self._slots: dict[str, dict[str, float]] = {}
        self._settled: OrderedDict[str, None] = OrderedDict()

    async def _seed(self, checks: tuple[Check, ...]) -> None:
        missing = [(c.limits.counter, c.period) for c in checks
                   if c.limits.max_budget is not None and (c.limits.counter, c.period) not in self._spend]
        if not missing:
            return
        found = await self._store.period_spend(missing)
        for name, period in missing:
            if period < self._period.get(name, period):
                continue  # a newer period was seen meanwhile
            if self._period.get(name, period) != period:
                self._spend.pop((name, self._period[name]), None)
            self._period[name] = period
            # setdefault: another admission may have seeded it (and counted on it) during the read
            self._spend.setdefault((name, period), found.get((name, period), 0))

    async def admit(self, request_id: str, checks: tuple[Check, ...], now: float) -> Refusal | None:
        await self._seed(checks)
        for check in checks:
            refusal = self._refusal(check, now)
            if refusal is not None:
                return refusal
        for check in checks:
            self._count(request_id, check, now)
        return None

    def _refusal(self, check: Check, now: float) -> Refusal | None:
        limits, name = check.limits, check.limits.counter
        budget = limits.max_budget_nanos
        spend = self._spend.get((name, check.period), 0)
        if budget is not None and spend >= budget:
            return Refusal(Reason.BUDGET, check, nanos_to_usd(spend), nanos_to_usd(budget), None)
        if limits.rpm_limit is not None:
            calls = self._window(name, now)
            if len(calls) >= limits.rpm_limit:
                return Refusal(Reason.RPM, check, len(calls), limits.rpm_limit, _wait(calls[0], now))
        if limits.tpm_limit is not None:
            tokens = self._tokens.get(name)
            if tokens is not None:
                tokens.prune(now)
                if tokens.total >= limits.tpm_limit:
                    return Refusal(Reason.TPM, check, tokens.total, limits.tpm_limit,
                                   tokens.retry_after(limits.tpm_limit, now))
        if limits.max_parallel_requests is not None:
            slots = self._live_slots(name, now)
            if len(slots) >= limits.max_parallel_requests:
                return Refusal(Reason.PARALLEL, check, len(slots), limits.max_parallel_requests, 1)
        return None

    def _window(self, name: str, now: float) -> deque[float]:
        calls = self._calls.setdefault(name, deque())
        while calls and calls[0] <= now - WINDOW_SECONDS:
            calls.popleft()
        return calls

    def _live_slots(self, name: str, now: float) -> dict[str, float]:
        slots = self._slots.setdefault(name, {})
        for request_id in [r for r, expiry in slots.items() if expiry <= now]:
            del slots[request_id]
        return slots

    def _count(self, request_id: str, check: Check, now: float) -> None:
        limits = check.limits
        if limits.rpm_limit is not None:
            self._calls[limits.counter].append(now)
        if limits.max_parallel_requests is not None:
            self._slots[limits.counter][request_id] = now + self._lease

    async def settle(self, request_id: str, checks: tuple[Check, ...], now: float, row: SpendRow) -> None:
        await self.release(request_id, checks)
        if request_id in self._settled:
            return
        self._settled[request_id] = None
        if len(self._settled) > _SETTLED_MEMORY:
            self._settled.popitem(last=False)
        for check in checks:
            key = (check.limits.counter, check.period)
            if key in self._spend:
                self._spend[key] += row.spend_nanos
            if check.limits.tpm_limit is not None and row.total_tokens:
                tokens = self._tokens.setdefault(check.limits.counter, _Tokens())
                tokens.entries.append((now, row.total_tokens))
                tokens.total += row.total_tokens

    async def release(self, request_id: str, checks: tuple[Check, ...]) -> None:
        for check in checks:
            slots = self._slots.get(check.limits.counter)
            if slots is not None:
                slots.pop(request_id, None)

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        return None
