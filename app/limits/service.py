"""The limits facade the proxy calls: ``admit`` before the upstream, ``settle`` or ``release`` after.

    ticket = await limiter.admit(request_id, caller.limits)   # BudgetExceeded / RateLimited (429),
    ...                                                       # ServiceUnavailable (503, fail closed)
    await limiter.settle(ticket, row)                         # the call ended: its spend row
    await limiter.release(ticket)                             # admitted, never settled

``settle`` journals the row first (``SpendLedger``: durable against kill -9, recorded in the store
once), then adds it to the backend's shared counters, so a crash between the two loses nothing the
store records. Calls with no limits skip the backend: ``record(row)`` journals their row only.

A backend that raises or takes longer than ``timeout`` (0.5 s) is *down*: one WARNING when it goes
down, one INFO when it is back, every failed call counted in ``spangate.limits.backend_errors``. While
it is down, admissions do not wait on it: with ``fail_open`` they pass uncounted, else they get a 503
(Retry-After: 1); a probe asks ``backend.healthy()`` every ``probe_seconds`` and brings it back.

Soft budgets: when a settle takes a scope's spend across its ``soft_budget``, one WARNING and one count
of ``spangate.limits.soft_budget_crossed``, once per scope and period in this process. The spend this
reads (also behind ``spangate.budget.remaining``) is this process's view: the store's value when first
seen and every ``refresh_seconds``, plus the calls this process settles in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from opentelemetry.metrics import Meter, NoOpMeter

from app.calls.limits import Scope, ScopeLimits
from app.errors import ServiceUnavailable
from app.limits.ledger import SpendLedger
from app.limits.metrics import MAX_LABELS, LimitMetrics
from app.limits.model import Check, CounterBackend, Reason, Refusal
from app.limits.refusals import refusal_error
from app.store import SpendRow

logger = logging.getLogger("spangate.limits")
BACKEND_TIMEOUT_SECONDS = 0.5
T = TypeVar("T")


class _BackendDown(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Ticket:
    request_id: str
    checks: tuple[Check, ...]
    admitted_at: float


class _SpendView:
    """This process's view of budgeted scopes' spend (nanos), for soft budgets and the gauge."""

    def __init__(self, ledger: SpendLedger, refresh_seconds: float, timeout: float) -> None:
        self._ledger = ledger
        self._refresh = refresh_seconds
        self._timeout = timeout
        self._spend: dict[tuple[str, int], tuple[int, float]] = {}  # -> (nanos, when read from the store)

    async def add(self, check: Check, nanos: int, now: float) -> tuple[int, int] | None:
        """(before, after) this call's spend; None when the store cannot be read."""
        key = (check.limits.counter, check.period)
        known = self._spend.get(key)
        if known is None or now - known[1] >= self._refresh:
            try:
                found = await asyncio.wait_for(self._ledger.store.period_spend([key]), self._timeout)
            except Exception:  # the view is a report; the next settle reads again
                return None
            known = (found.get(key, 0), now)
            self._drop_older(key)
        before = known[0]
        self._spend[key] = (before + nanos, known[1])
        return before, before + nanos

    def _drop_older(self, key: tuple[str, int]) -> None:
        for old in [k for k in self._spend if k[0] == key[0] and k[1] < key[1]]:
            del self._spend[old]


class Limiter:
    def __init__(self, backend: CounterBackend, ledger: SpendLedger, *, fail_open: bool = True,
                 meter: Meter | None = None, clock: Callable[[], float] = time.time,
                 timeout: float = BACKEND_TIMEOUT_SECONDS, probe_seconds: float = 0.5,
                 refresh_seconds: float = 30.0, max_labels: int = MAX_LABELS) -> None:
        self.backend = backend
        self.ledger = ledger
        self.fail_open = fail_open
        self.metrics = LimitMetrics(meter or NoOpMeter("spangate.limits"), max_labels=max_labels)
        self._clock = clock
        self._timeout = timeout
        self._probe_seconds = probe_seconds
        self._view = _SpendView(ledger, refresh_seconds, timeout)
        self._soft_warned: set[tuple[str, int]] = set()
        self._down_since: float | None = None
        self._errors = 0
        self._probe: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.ledger.start()

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        await self.ledger.close()
        with contextlib.suppress(Exception):
            await self.backend.close()

    # --- the request path ----------------------------------------------------------------------------

    def checks(self, limits: tuple[ScopeLimits, ...], now: float) -> tuple[Check, ...]:
        moment = datetime.fromtimestamp(now, UTC)
        return tuple(Check(scope, scope.period(moment)[0]) for scope in limits)

    def periods(self, limits: tuple[ScopeLimits, ...], now: float) -> tuple[int, int]:
        """The budget periods (key, team) a call at ``now`` falls in: a ``SpendRow``'s periods."""
        moment = datetime.fromtimestamp(now, UTC)
        found = {scope.scope: scope.period(moment)[0] for scope in limits}
        return found.get(Scope.KEY, 0), found.get(Scope.TEAM, 0)

    async def admit(self, request_id: str, limits: tuple[ScopeLimits, ...]) -> Ticket:
        now = self._clock()
        ticket = Ticket(request_id, self.checks(limits, now), now)
        if not limits:
            return ticket
        if self._down_since is not None:
            return self._unavailable(ticket)
        try:
            refusal = await self._call("admit", lambda: self.backend.admit(request_id, ticket.checks, now))
        except _BackendDown:
            return self._unavailable(ticket)
        if refusal is not None:
            self._refused(refusal, limits, now)
        return ticket

    def _unavailable(self, ticket: Ticket) -> Ticket:
        if self.fail_open:
            return ticket
        raise ServiceUnavailable(f"budget and rate limit counters are unavailable ({self.backend.name}); "
                                 "try again", retry_after=1, code="limits_unavailable")

    def _refused(self, refusal: Refusal, limits: tuple[ScopeLimits, ...], now: float) -> None:
        self.metrics.refused(limits, refusal.reason)
        if refusal.reason is Reason.BUDGET:
            self.metrics.budget_remaining(refusal.check.limits, round(refusal.current * 1e9))
        raise refusal_error(refusal, now)

    def record(self, row: SpendRow) -> None:
        """A call with no limits ended: its row to the ledger (and the spend metric) only."""
        self.ledger.record(row)
        self.metrics.record_spend(row)

    async def settle(self, ticket: Ticket, row: SpendRow) -> None:
        """Never raises: the ledger has the row before anything can fail."""
        self.ledger.record(row)
        limits = tuple(check.limits for check in ticket.checks)
        self.metrics.record_spend(row, limits)
        if not ticket.checks:
            return
        now = self._clock()
        with contextlib.suppress(_BackendDown):
            await self._call("settle", lambda: self.backend.settle(ticket.request_id, ticket.checks, now, row))
        for check in ticket.checks:
            if check.limits.max_budget is not None or check.limits.soft_budget is not None:
                await self._report_spend(check, row.spend_nanos, now)

    async def release(self, ticket: Ticket) -> None:
        if ticket.checks:
            with contextlib.suppress(_BackendDown):
                await self._call("release", lambda: self.backend.release(ticket.request_id, ticket.checks))

    async def _report_spend(self, check: Check, nanos: int, now: float) -> None:
        spend = await self._view.add(check, nanos, now)
        if spend is None:
            return
        before, after = spend
        self.metrics.budget_remaining(check.limits, after)
        soft = check.limits.soft_budget_nanos
        key = (check.limits.counter, check.period)
        if soft is not None and before < soft <= after and key not in self._soft_warned:
            self._soft_warned.add(key)
            self.metrics.soft_budget_crossed(check.limits)
            logger.warning("soft budget crossed: %s=%s spent %.6f USD of a soft budget of %.6f USD",
                           check.limits.scope.value, check.limits.label, after / 1e9, soft / 1e9)

    # --- the backend's health --------------------------------------------------------------------------

    async def _call(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            result = await asyncio.wait_for(call(), self._timeout)
        except Exception as exc:  # any backend failure is an outage, mapped here once
            self._failed(operation, exc)
            raise _BackendDown from exc
        self._back()
        return result

    def _failed(self, operation: str, exc: Exception) -> None:
        self._errors += 1
        self.metrics.backend_error(self.backend.name, operation)
        if self._down_since is not None:
            return
        self._down_since = self._clock()
        then = "pass without shared counting" if self.fail_open else "are refused with 503"
        logger.warning("limits backend %s unreachable (%s on %s): calls with limits %s until it is back",
                       self.backend.name, type(exc).__name__, operation, then)
        self._probe = asyncio.get_running_loop().create_task(self._probe_until_back(), name="limits-probe")

    def _back(self) -> None:
        if self._down_since is None:
            return
        down_for = self._clock() - self._down_since
        self._down_since = None
        logger.info("limits backend %s reachable again after %.1f s", self.backend.name, down_for)

    async def _probe_until_back(self) -> None:
        while self._down_since is not None:
            await asyncio.sleep(self._probe_seconds)  # a poll interval, not an ordering of events
            with contextlib.suppress(Exception):
                if await asyncio.wait_for(self.backend.healthy(), self._timeout):
                    self._back()

    def readiness(self) -> dict[str, Any]:
        """For /health/readiness: the counters' backend and the spend ledger."""
        return {"backend": self.backend.name, "healthy": self._down_since is None, "fail_open": self.fail_open,
                "backend_errors": self._errors, "ledger_pending": self.ledger.pending,
                "ledger_store_healthy": self.ledger.store_healthy}
