"""A backend's ``Refusal`` as the 429 a client gets, in LiteLLM's words, with its Retry-After.

Messages name the scope by its label (a key's alias or short hash, a team's alias or id), never by a
full key hash. Retry-After: rpm and tpm, the seconds until enough of the 60 s window has passed (ceil,
at least 1); parallel calls, 1 (a slot frees as soon as a call ends); a budget, the seconds until
``budget_reset_at``, none for a budget that never resets.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from app.calls.limits import Scope
from app.errors import BudgetExceeded, GatewayError, RateLimited
from app.limits.model import Reason, Refusal

_LIMIT_NAMES = {Reason.RPM: ("rpm", "rpm limit"), Reason.TPM: ("tpm", "tpm limit"),
                Reason.PARALLEL: ("parallel requests", "max_parallel_requests")}


def _usd(value: float) -> str:
    return repr(round(value, 9))


def budget_retry_after(refusal: Refusal, now: float) -> int | None:
    _, reset = refusal.check.limits.period(datetime.fromtimestamp(now, UTC))
    return None if reset is None else max(1, math.ceil(reset.timestamp() - now))


def retry_after(refusal: Refusal, now: float) -> int | None:
    if refusal.reason is Reason.BUDGET:
        return budget_retry_after(refusal, now)
    if refusal.reason is Reason.PARALLEL:
        return 1
    return max(1, refusal.retry_after or 1)


def refusal_error(refusal: Refusal, now: float) -> GatewayError:
    limits = refusal.check.limits
    who = f"{'Key' if limits.scope is Scope.KEY else 'Team'}={limits.label}"
    wait = retry_after(refusal, now)
    if refusal.reason is Reason.BUDGET:
        return BudgetExceeded(f"Budget has been exceeded! {who} Current cost: {_usd(refusal.current)}, "
                              f"Max budget: {_usd(refusal.limit)}", retry_after=wait)
    current, limit = _LIMIT_NAMES[refusal.reason]
    return RateLimited(f"Rate limit exceeded for {who}. Crossed {limit}: current {current}: "
                       f"{int(refusal.current)}, {limit}: {int(refusal.limit)}. Retry after {wait} s.",
                       retry_after=wait or 1)
