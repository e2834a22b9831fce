"""The limits' OTel metrics: spend, budget remaining, refusals, soft budgets crossed, backend errors.

Recorded through the gateway's meter, so ``/metrics`` renders them and an OTLP metric reader exports
them (a team's own metrics backend reads the same series).

Bounded cardinality: every series is labelled by team and key, never by a full key hash. At most
``max_labels`` distinct key labels (and as many team labels) get series of their own in one process;
every scope seen after that is counted under ``"other"``, and gets no budget gauge (a gauge of many
scopes summed means nothing). Keys are created by admins, so 1,000 is far above a normal deployment.
"""

from __future__ import annotations

from opentelemetry.metrics import Meter

from app.calls.limits import Scope, ScopeLimits, nanos_to_usd
from app.limits.model import Reason
from app.store import SpendRow

SPEND = "spangate.limits.spend"  # per team and key; spangate.spend (app.calls.metrics) is per team
BUDGET_REMAINING = "spangate.budget.remaining"
REFUSALS = "spangate.limits.refusals"
BACKEND_ERRORS = "spangate.limits.backend_errors"
SOFT_BUDGET_CROSSED = "spangate.limits.soft_budget_crossed"
TEAM, KEY, REASON, BACKEND, OPERATION = "team", "key", "reason", "backend", "operation"
OTHER = "other"
MAX_LABELS = 1000


class _Labels:
    """The first ``limit`` distinct ids keep their label; the rest are ``other``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: dict[str, str] = {}

    def of(self, id: str, label: str) -> str:
        known = self.seen.get(id)
        if known is not None:
            return known
        if len(self.seen) >= self.limit:
            return OTHER
        self.seen[id] = label
        return label


def short_hash(token_hash: str) -> str:
    """A key's label when none is known: enough to tell keys apart, useless as a lookup."""
    return token_hash[:16]


class LimitMetrics:
    def __init__(self, meter: Meter, *, max_labels: int = MAX_LABELS) -> None:
        self.spend = meter.create_counter(SPEND, unit="USD", description="Spend per team and key (USD)")
        self.remaining = meter.create_gauge(BUDGET_REMAINING, unit="USD",
                                            description="max_budget minus the period's spend, per scope")
        self.refusals = meter.create_counter(REFUSALS, unit="{call}",
                                             description="Calls refused by a budget or rate limit")
        self.backend_errors = meter.create_counter(BACKEND_ERRORS, unit="{error}",
                                                   description="Limit counter backend calls that failed")
        self.soft_crossed = meter.create_counter(SOFT_BUDGET_CROSSED, unit="{event}",
                                                 description="Scopes whose spend crossed soft_budget")
        self._keys = _Labels(max_labels)
        self._teams = _Labels(max_labels)

    def _scope_label(self, limits: ScopeLimits) -> str:
        labels = self._keys if limits.scope is Scope.KEY else self._teams
        return labels.of(limits.id, limits.label)

    def _attrs(self, limits: tuple[ScopeLimits, ...], token_hash: str | None = None,
               team_id: str | None = None) -> dict[str, str]:
        # A scope's own label (its alias) first: the id keeps the first label it was seen with.
        attrs = {KEY if scope.scope is Scope.KEY else TEAM: self._scope_label(scope) for scope in limits}
        if token_hash is not None and KEY not in attrs:
            attrs[KEY] = self._keys.of(token_hash, short_hash(token_hash))
        if team_id is not None and TEAM not in attrs:
            attrs[TEAM] = self._teams.of(team_id, team_id)
        return attrs

    def record_spend(self, row: SpendRow, limits: tuple[ScopeLimits, ...] = ()) -> None:
        if row.spend_nanos:
            self.spend.add(nanos_to_usd(row.spend_nanos), self._attrs(limits, row.token_hash, row.team_id))

    def refused(self, limits: tuple[ScopeLimits, ...], reason: Reason) -> None:
        self.refusals.add(1, {**self._attrs(limits), REASON: reason.value})

    def budget_remaining(self, limits: ScopeLimits, spend_nanos: int) -> None:
        if limits.max_budget_nanos is None:
            return
        label = self._scope_label(limits)
        if label != OTHER:
            attr = KEY if limits.scope is Scope.KEY else TEAM
            self.remaining.set(nanos_to_usd(limits.max_budget_nanos - spend_nanos), {attr: label})

    def soft_budget_crossed(self, limits: ScopeLimits) -> None:
        self.soft_crossed.add(1, {KEY if limits.scope is Scope.KEY else TEAM: self._scope_label(limits)})

    def backend_error(self, backend: str, operation: str) -> None:
        self.backend_errors.add(1, {BACKEND: backend, OPERATION: operation})
