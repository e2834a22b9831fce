"""The budget and rate-limit fields of keys and teams, as the admin API takes and shows them.

Taken by /key/generate, /key/update, /team/new and /team/update (LiteLLM's names), each checked here
by hand so a bad value is a 400 naming its field: ``max_budget`` and ``soft_budget`` (USD, 0 up to
a billion), ``budget_duration`` (``30s``, ``30m``, ``30h``, ``30d``, ``1mo``; setting it starts the
periods anew from now), ``tpm_limit``, ``rpm_limit`` and ``max_parallel_requests`` (whole numbers;
0 admits no call). On an update a field sent as null clears that limit, a field left out keeps it.

Shown with each key and team: the same fields, ``budget_reset_at`` (the end of the current period,
null without a duration) and ``spend`` (USD in the current period), read for a whole page of records
in one store query.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import msgspec

from app.calls.limits import BudgetDuration, ScopeLimits, nanos_to_usd
from app.errors import InvalidRequest
from app.store import KeyRecord, Store, TeamRecord
from app.teams.limits import key_scope, team_scope
from app.teams.state import utcnow

MAX_USD = 1e9  # a budget in nano-dollars stays within a signed 64-bit counter (9.2e18)
MAX_RATE = 10**12  # tokens or calls a minute; exact as a double in any backend's arithmetic
MAX_PARALLEL = 1_000_000
_MONEY = ("max_budget", "soft_budget")
_COUNTS = {"tpm_limit": MAX_RATE, "rpm_limit": MAX_RATE, "max_parallel_requests": MAX_PARALLEL}
LIMIT_NAMES = (*_MONEY, "budget_duration", *_COUNTS)
Spends = Mapping[tuple[str, int], int]


class LimitFields(msgspec.Struct):
    """Mixed into the admin bodies. ``Any``: the types are checked in ``limit_changes``, whose errors
    name the field (msgspec's would not reach the client with a ``param``)."""

    max_budget: Any = msgspec.UNSET
    soft_budget: Any = msgspec.UNSET
    budget_duration: Any = msgspec.UNSET
    tpm_limit: Any = msgspec.UNSET
    rpm_limit: Any = msgspec.UNSET
    max_parallel_requests: Any = msgspec.UNSET


def limit_changes(body: LimitFields, now: datetime, *, update: bool) -> dict[str, Any]:
    """The store fields to write: every field sent, checked; on an update a null clears it.
    A new duration (re)starts the budget periods now (``budget_anchor``)."""
    changes: dict[str, Any] = {}
    for name in LIMIT_NAMES:
        value = getattr(body, name)
        if value is msgspec.UNSET or (value is None and not update):
            continue
        changes[name] = None if value is None else _checked(name, value)
    if "budget_duration" in changes:
        changes["budget_anchor"] = None if changes["budget_duration"] is None else now
    return changes


def _checked(name: str, value: Any) -> Any:
    if name in _MONEY:
        return _money(name, value)
    if name == "budget_duration":
        try:
            return str(BudgetDuration.parse(value))
        except ValueError as exc:
            raise _invalid(name, f"budget_duration {exc}") from None
    return _count(name, value, _COUNTS[name])


def _money(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(name, f"{name} must be a number of US dollars (or null for no limit)")
    if not math.isfinite(value) or not 0 <= value <= MAX_USD:
        raise _invalid(name, f"{name} must be from 0 to {MAX_USD:.0f} US dollars")
    return float(value)


def _count(name: str, value: Any, most: int) -> int:
    # 10.0 is taken as 10, as LiteLLM's pydantic models take it; 10.5 is not.
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not value.is_integer()):
        raise _invalid(name, f"{name} must be a whole number (or null for no limit)")
    if not 0 <= value <= most:
        raise _invalid(name, f"{name} must be from 0 to {most} (0 admits no call)")
    return int(value)


def _invalid(name: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=name, code="invalid_value")


def scope_of(record: KeyRecord | TeamRecord) -> ScopeLimits:
    return key_scope(record) if isinstance(record, KeyRecord) else team_scope(record)


async def budgets_of(store: Store, records: Iterable[KeyRecord | TeamRecord],
                     now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Each record's budget fields as shown, by its counter name (``key:<hash>``, ``team:<id>``;
    ``budget_for`` looks one up): the current periods' spend of them all in one query."""
    moment = now or utcnow()
    scopes = [scope_of(r) for r in records]
    spends = await store.period_spend((s.counter, s.period(moment)[0]) for s in scopes)
    return {s.counter: budget_json(s, spends, moment) for s in scopes}


def budget_for(budgets: Mapping[str, dict[str, Any]], record: KeyRecord | TeamRecord) -> dict[str, Any]:
    return budgets[scope_of(record).counter]


def budget_json(scope: ScopeLimits, spends: Spends, now: datetime) -> dict[str, Any]:
    start, reset = scope.period(now)
    return {"max_budget": scope.max_budget, "soft_budget": scope.soft_budget,
            "budget_duration": str(scope.budget_duration) if scope.budget_duration else None,
            "tpm_limit": scope.tpm_limit, "rpm_limit": scope.rpm_limit,
            "max_parallel_requests": scope.max_parallel_requests,
            "budget_reset_at": reset.isoformat() if reset else None,
            "spend": nanos_to_usd(spends.get((scope.counter, start), 0))}
