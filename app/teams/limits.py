"""The budgets and rate limits of a key and of its team, read from their store records as ``ScopeLimits``.

The request path gets them on the ``Caller`` (``caller_limits``): only scopes that set a limit field,
so most callers carry the one shared empty tuple and admission is skipped for them. The admin API
builds the same ``ScopeLimits`` for every record it shows (``key_scope``, ``team_scope``), so the
spend it shows is read from the very counter and period the request path adds to.
"""

from __future__ import annotations

import logging

from app.calls.limits import BudgetDuration, Scope, ScopeLimits, any_limit
from app.store import KeyRecord, TeamRecord

log = logging.getLogger(__name__)
SHORT_HASH = 16  # hex digits of a key hash that name it in errors and metric labels without an alias
NO_LIMITS: tuple[ScopeLimits, ...] = ()


def sets_limits(record: KeyRecord | TeamRecord) -> bool:
    """A duration alone counts: it decides the period a key's or team's spend is counted in."""
    return any_limit(record.max_budget, record.soft_budget, record.budget_duration, record.tpm_limit,
                     record.rpm_limit, record.max_parallel_requests)


def key_scope(record: KeyRecord) -> ScopeLimits:
    return _scope(Scope.KEY, record.token_hash, record.key_alias or record.token_hash[:SHORT_HASH], record)


def team_scope(record: TeamRecord) -> ScopeLimits:
    return _scope(Scope.TEAM, record.team_id, record.team_alias or record.team_id, record)


def caller_limits(key: KeyRecord, team_limits: ScopeLimits | None) -> tuple[ScopeLimits, ...]:
    """The key's scope, then its team's, each only when set; ``team_limits`` is built once per team."""
    if not sets_limits(key):
        return NO_LIMITS if team_limits is None else (team_limits,)
    own = key_scope(key)
    return (own,) if team_limits is None else (own, team_limits)


def _scope(scope: Scope, scope_id: str, label: str, record: KeyRecord | TeamRecord) -> ScopeLimits:
    return ScopeLimits(scope=scope, id=scope_id, label=label, max_budget=record.max_budget,
                       soft_budget=record.soft_budget, budget_duration=_duration(scope, label, record),
                       budget_anchor=record.budget_anchor or record.created_at, tpm_limit=record.tpm_limit,
                       rpm_limit=record.rpm_limit, max_parallel_requests=record.max_parallel_requests)


def _duration(scope: Scope, label: str, record: KeyRecord | TeamRecord) -> BudgetDuration | None:
    if record.budget_duration is None:
        return None
    try:
        return BudgetDuration.parse(record.budget_duration)
    except ValueError as exc:  # the API stores parsed values only; a row written by hand must not stop the index
        log.error("%s %s: stored budget_duration unusable, counted as one period for ever: %s", scope, label, exc)
        return None
