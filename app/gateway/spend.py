"""The proxy's side of budgets and rate limits: admit a limited caller's call before the upstream is
called, and record every keyed call's spend when it ends.

A caller with no limits (an empty ``Caller.limits``, the usual case) costs one truth test at admission;
at its end one spend log row goes to the ledger (a journal line, flushed to the store in the background).
A limited caller's call is admitted by the ``Limiter`` (its counters shared by every instance) and
settled at its end, the settlement awaited before a complete answer is returned, so the next call on any
instance sees this one's spend.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from typing import Any

from app.calls.limits import usd_to_nanos
from app.calls.record import CallRecord
from app.store import SpendRow

FULL_HASH = 64  # a virtual key's SHA-256 in hex; the master key's caller carries a short one


class CallLimits:
    """Inactive (admits everything, records nothing) until ``attach`` gives it the limiter: the store,
    which the limiter needs, opens in the server's lifespan, after the proxy is built."""

    __slots__ = ("_limiter", "_log_unlimited", "_settling")

    def __init__(self) -> None:
        self._limiter: Any = None  # app.limits.service.Limiter
        self._log_unlimited = True
        self._settling: set[asyncio.Task[None]] = set()

    def attach(self, limiter: Any, *, spend_logs: bool = True) -> None:
        """``spend_logs=False`` (LiteLLM's ``disable_spend_logs``): rows only for limited callers' calls,
        which their counters need."""
        self._limiter = limiter
        self._log_unlimited = spend_logs

    @property
    def limiter(self) -> Any:
        return self._limiter

    async def admit(self, call: CallRecord) -> None:
        """Raises ``BudgetExceeded`` or ``RateLimited`` (or ``ServiceUnavailable``, failing closed)."""
        limits = call.caller.limits
        if limits and self._limiter is not None:
            call.ticket = await self._limiter.admit(os.urandom(12).hex(), limits)

    def ended(self, call: CallRecord, started: bool) -> asyncio.Task[None] | None:
        """The call's end (its span already ended, so ``call.cost`` is known): its spend log row, and
        for an admitted call its settlement, as a task the caller may await. ``started``: the call got
        past admission and validation (a call refused before it started has no row)."""
        limiter = self._limiter
        if limiter is None:
            return None
        ticket = call.ticket
        if ticket is None:
            if started and self._log_unlimited and _keyed(call):
                limiter.record(spend_row(call, os.urandom(12).hex(), (0, 0)))
            return None
        call.ticket = None  # settled once, whichever end runs first
        row = spend_row(call, ticket.request_id, limiter.periods(call.caller.limits, ticket.admitted_at))
        task = asyncio.get_running_loop().create_task(limiter.settle(ticket, row))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)
        return task


def _keyed(call: CallRecord) -> bool:
    caller = call.caller
    return caller.key_hash is not None or caller.team_id is not None


def spend_row(call: CallRecord, request_id: str, periods: tuple[int, int]) -> SpendRow:
    caller = call.caller
    usage = call.usage if isinstance(call.usage, dict) else {}
    prompt, completion = _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
    total = _int(usage.get("total_tokens")) or prompt + completion
    key = caller.key_hash if caller.key_hash is not None and len(caller.key_hash) == FULL_HASH else None
    cost = call.cost if call.error is None and isinstance(call.cost, float | int) else 0
    end = call.end_time or call.start_time
    return SpendRow(
        request_id=request_id, token_hash=key, team_id=caller.team_id, user_id=caller.user_id,
        model=call.group or call.model, call_type=str(call.operation.value),
        status="failure" if call.error else "success",
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=total,
        spend_nanos=max(0, usd_to_nanos(cost)),
        start_time=datetime.fromtimestamp(call.start_time, UTC), end_time=datetime.fromtimestamp(end, UTC),
        key_period=periods[0], team_period=periods[1])


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
