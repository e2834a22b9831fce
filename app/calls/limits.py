"""What a key or a team may spend and how fast it may call: the data, money in integers, budget periods.

Pure data and arithmetic. The store keeps the fields on keys and teams, ``app.teams.state`` puts the
limits of a key and of its team on the ``Caller``, ``app.limits`` counts and enforces them.

Money is counted in integer nano-dollars (1e-9 USD) wherever it is added up: sums of integers are
exact in any order, on any instance, so the spend a store records equals the sum of its spend log to
the last digit. A call's cost is rounded to nanos once, when it is recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

NANOS_PER_USD = 1_000_000_000
_DURATION = re.compile(r"^\s*(\d{1,9})\s*(mo|s|m|h|d)\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION_SECONDS = 100 * 366 * 86400
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def usd_to_nanos(usd: float) -> int:
    return round(usd * NANOS_PER_USD)


def nanos_to_usd(nanos: int) -> float:
    return nanos / NANOS_PER_USD


class Scope(StrEnum):
    KEY = "key"
    TEAM = "team"


@dataclass(frozen=True, slots=True)
class BudgetDuration:
    """LiteLLM's ``budget_duration``: ``30s``, ``30m``, ``30h``, ``30d``, ``1mo`` (calendar months)."""

    amount: int
    unit: str  # "s", "m", "h", "d" or "mo"

    @classmethod
    def parse(cls, text: str) -> BudgetDuration:
        """Raises ValueError with a message fit for a client."""
        match = _DURATION.match(text) if isinstance(text, str) else None
        if not match:
            raise ValueError(f"{str(text)[:40]!r} is not a duration like '30s', '30m', '30h', '30d' or '1mo'")
        amount, unit = int(match.group(1)), match.group(2)
        if amount == 0:
            raise ValueError("a budget duration must be longer than 0")
        seconds = amount * (31 * 86400 if unit == "mo" else _SECONDS[unit])
        if seconds > MAX_DURATION_SECONDS:
            raise ValueError(f"{text[:40]!r} is longer than 100 years")
        return cls(amount, unit)

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    def period(self, anchor: datetime, now: datetime) -> tuple[datetime, datetime]:
        """The period holding ``now``: its start and its end (``budget_reset_at``). Periods follow
        each other from ``anchor`` (when the budget began); ``now`` before the anchor is in the first."""
        if self.unit == "mo":
            return self._month_period(anchor, now)
        length = timedelta(seconds=self.amount * _SECONDS[self.unit])
        count = max(0, (now - anchor) // length)
        start = anchor + count * length
        return start, start + length

    def _month_period(self, anchor: datetime, now: datetime) -> tuple[datetime, datetime]:
        months = max(0, (now.year - anchor.year) * 12 + now.month - anchor.month)
        count = months // self.amount
        while count > 0 and add_months(anchor, count * self.amount) > now:
            count -= 1
        while add_months(anchor, (count + 1) * self.amount) <= now:
            count += 1
        return add_months(anchor, count * self.amount), add_months(anchor, (count + 1) * self.amount)


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` that many calendar months later, the day clamped to the month's last (Jan 31 + 1 = Feb 28)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    last = (datetime(year + month // 12, month % 12 + 1, 1, tzinfo=moment.tzinfo) - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last))


@dataclass(frozen=True, slots=True)
class ScopeLimits:
    """The limits of one key or one team, as the request path reads them. A ``Caller`` carries one for
    its key and one for its team, each only when it sets something (no limits: an empty tuple)."""

    scope: Scope
    id: str  # a key: its full SHA-256 token hash; a team: its team_id
    label: str  # what errors and metric labels name: the key's alias or short hash, the team's alias or id
    max_budget: float | None = None  # USD per period (or ever, without a duration)
    soft_budget: float | None = None  # USD: crossing it is reported, nothing is refused
    budget_duration: BudgetDuration | None = None
    budget_anchor: datetime = EPOCH  # when the first budget period began
    tpm_limit: int | None = None  # tokens in any 60 s (a sliding window)
    rpm_limit: int | None = None  # calls admitted in any 60 s (a sliding window)
    max_parallel_requests: int | None = None

    @property
    def counter(self) -> str:
        """The one name its counters are kept under, everywhere: ``key:<hash>`` or ``team:<id>``."""
        return f"{self.scope.value}:{self.id}"

    @property
    def max_budget_nanos(self) -> int | None:
        return None if self.max_budget is None else usd_to_nanos(self.max_budget)

    @property
    def soft_budget_nanos(self) -> int | None:
        return None if self.soft_budget is None else usd_to_nanos(self.soft_budget)

    def period(self, now: datetime) -> tuple[int, datetime | None]:
        """The budget period holding ``now``: its start in unix seconds (0 without a duration: one
        period for ever) and when it resets (``budget_reset_at``; None without a duration)."""
        if self.budget_duration is None:
            return 0, None
        start, end = self.budget_duration.period(self.budget_anchor, now)
        return int(start.timestamp()), end


def any_limit(*values: object) -> bool:
    return any(value is not None for value in values)
