"""The PostgreSQL counter backend: several gateway instances on one PostgreSQL and no Redis.

Every figure lives in the database and every time comes from its clock (``clock_timestamp()``), so all
instances count on one clock and the ``now`` the facade passes is not used:

* budgets: ``spend_counters``, which ``Store.record_spend`` keeps (exactly once per request id);
* rpm: the calls admitted in the last 60 s (a sliding log, ``limit_events`` kind 0);
* tpm: the tokens of the calls settled in the last 60 s (kind 1, at the time each call settled);
* parallel: the unexpired leases in ``limit_leases`` (a killed instance's slots free at expiry).

An admission is one transaction holding an advisory lock per counter (``Store.admitting``): the checks of
all scopes pass and the call is counted, or nothing is. Settling records the spend first (its commit is
what the next admission, on any instance, reads), then the tokens and the freed slot. Database errors
propagate as ``StoreUnavailable``: the facade decides to fail open or closed.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from app.calls.limits import nanos_to_usd
from app.limits.model import WINDOW_SECONDS, Check, Reason, Refusal
from app.store import SpendRow, Store, StoreError
from app.store.spend import WindowCounts

LEASE_SECONDS = 3600.0  # a parallel slot outlives any call; it only matters when its instance died


class PostgresBackend:
    name = "postgres"

    def __init__(self, store: Store, *, lease_seconds: float = LEASE_SECONDS) -> None:
        if not store.is_postgres:
            # A single SQLite instance counts in process (the memory backend); nothing here would help it.
            raise ValueError("the postgres limits backend needs a PostgreSQL store; use the memory backend")
        self._store = store
        self._lease_seconds = lease_seconds

    async def admit(self, request_id: str, checks: tuple[Check, ...], now: float) -> Refusal | None:
        enforced = [check for check in checks if _enforces(check)]
        if not enforced:
            return None
        periods = {check.limits.counter: check.period for check in enforced}
        rpm, parallel = _counters(enforced, "rpm_limit"), _counters(enforced, "max_parallel_requests")
        # Budgets and tpm are only read here (settling writes them): without rpm or parallel slots to
        # count, there is nothing for a lock to keep exact, and the admission is a single read.
        async with self._store.admitting(periods, lock=bool(rpm or parallel)) as admission:
            clock, counts = await admission.read(periods, WINDOW_SECONDS)
            refusal = next(filter(None, (_refusal(c, counts[c.limits.counter], clock) for c in enforced)), None)
            if refusal is None:
                await admission.count(request_id, rpm, parallel, self._lease_seconds)
        return refusal

    async def settle(self, request_id: str, checks: tuple[Check, ...], now: float, row: SpendRow) -> None:
        await self._store.record_spend([row])
        tpm, parallel = _counters(checks, "tpm_limit"), _counters(checks, "max_parallel_requests")
        if tpm or parallel:
            await self._store.settle_windows(request_id, tpm, row.total_tokens, parallel)

    async def release(self, request_id: str, checks: tuple[Check, ...]) -> None:
        parallel = _counters(checks, "max_parallel_requests")
        if parallel:
            await self._store.settle_windows(request_id, [], 0, parallel)

    async def healthy(self) -> bool:
        try:
            await self._store.version()
        except StoreError:
            return False
        return True

    async def close(self) -> None:
        """Nothing of its own to close: the store belongs to the app."""


def _enforces(check: Check) -> bool:
    limits = check.limits
    return any(value is not None for value in (limits.max_budget, limits.rpm_limit, limits.tpm_limit,
                                               limits.max_parallel_requests))


def _counters(checks: tuple[Check, ...] | list[Check], limit: str) -> list[str]:
    return [check.limits.counter for check in checks if getattr(check.limits, limit) is not None]


def _refusal(check: Check, counts: WindowCounts, now: float) -> Refusal | None:
    """The first of this scope's limits the call would break: budget, rpm, tpm, parallel calls."""
    limits = check.limits
    budget = limits.max_budget_nanos
    if budget is not None and counts.spend_nanos >= budget:
        return Refusal(Reason.BUDGET, check, nanos_to_usd(counts.spend_nanos), limits.max_budget or 0.0,
                       _budget_retry(check, now))
    if limits.rpm_limit is not None and counts.calls >= limits.rpm_limit:
        return Refusal(Reason.RPM, check, counts.calls, limits.rpm_limit, _window_retry(counts.first_call, now))
    if limits.tpm_limit is not None and counts.tokens >= limits.tpm_limit:
        return Refusal(Reason.TPM, check, counts.tokens, limits.tpm_limit, _window_retry(counts.first_tokens, now))
    if limits.max_parallel_requests is not None and counts.leases >= limits.max_parallel_requests:
        # When a call in flight ends is unknown; a second is what clients of LiteLLM's limiter are told.
        return Refusal(Reason.PARALLEL, check, counts.leases, limits.max_parallel_requests, 1)
    return None


def _window_retry(oldest: float | None, now: float) -> int:
    """Seconds until the oldest event in the window leaves it (at least 1)."""
    if oldest is None:
        return 1
    return max(1, math.ceil(oldest + WINDOW_SECONDS - now))


def _budget_retry(check: Check, now: float) -> int | None:
    """Seconds until the budget period resets; None for a budget without a duration (it never does)."""
    duration = check.limits.budget_duration
    if duration is None:
        return None
    _, end = duration.period(check.limits.budget_anchor, datetime.fromtimestamp(check.period, UTC))
    return max(1, math.ceil(end.timestamp() - now))
