"""What the limits service and its counter backends hand each other.

A call's ``Check`` is one scope's limits with the budget period it falls in; a backend admits the call
against all its checks at once (all pass, or nothing is counted) and hands back a ``Refusal`` naming the
first limit that failed. Backends: ``memory`` (one process, SQLite), ``redis`` (several instances, the
counters in Redis, the store the durable truth), ``postgres`` (several instances, no Redis: the counters
in PostgreSQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from app.calls.limits import ScopeLimits
from app.store import SpendRow

WINDOW_SECONDS = 60  # rpm and tpm: any 60 s, a sliding window over each admission's time


class Reason(StrEnum):
    BUDGET = "budget"
    RPM = "rpm"
    TPM = "tpm"
    PARALLEL = "parallel"


@dataclass(frozen=True, slots=True)
class Check:
    limits: ScopeLimits
    period: int  # budget period start, unix seconds (0: no duration)


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: Reason
    check: Check
    current: float  # spend in USD, calls or tokens in the window, or calls in flight
    limit: float
    retry_after: int | None  # seconds until the call could pass (None: a budget that never resets)


class CounterBackend(Protocol):
    name: str  # "memory", "redis" or "postgres"

    async def admit(self, request_id: str, checks: tuple[Check, ...], now: float) -> Refusal | None:
        """Check every limit of every scope and, when all pass, count the call (rpm, a parallel slot)."""

    async def settle(self, request_id: str, checks: tuple[Check, ...], now: float, row: SpendRow) -> None:
        """The call ended: add its spend to the budget counters (once per request id), its tokens to
        the tpm windows, and free its parallel slot."""

    async def release(self, request_id: str, checks: tuple[Check, ...]) -> None:
        """Free the parallel slot of a call that was admitted and will not be settled."""

    async def healthy(self) -> bool:
        """One cheap round trip; False while the backend cannot be reached."""

    async def close(self) -> None: ...
