"""Limits tests: the real Limiter on the real in-process backend, a real SQLite store and journal files
in tmp_path, an injected clock, and metrics read back through the gateway's in-memory reader."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from app.api.prometheus import build_meter_provider
from app.calls.limits import Scope, ScopeLimits
from app.limits.ledger import SpendLedger
from app.limits.memory import MemoryBackend
from app.limits.service import Limiter, Ticket
from app.store import SpendRow, Store

KEY_HASH = "a" * 64
START = datetime(2026, 12, 1, tzinfo=UTC).timestamp()


class Clock:
    """Unix seconds that move only when a test moves them."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def key_limits(**limits: Any) -> ScopeLimits:
    return ScopeLimits(Scope.KEY, KEY_HASH, "my-key", **limits)


def team_limits(**limits: Any) -> ScopeLimits:
    return ScopeLimits(Scope.TEAM, "t1", "search-team", **limits)


def spend_row(request_id: str, nanos: int, *, tokens: int = 0, periods: tuple[int, int] = (0, 0),
              key: str | None = KEY_HASH, team: str | None = "t1") -> SpendRow:
    moment = datetime(2026, 12, 1, tzinfo=UTC)
    return SpendRow(request_id, key, team, None, "mock-gpt", "chat", "success", tokens, 0, tokens, nanos,
                    moment, moment + timedelta(seconds=1), *periods)


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    if data is None:
        return {}
    return {m.name: list(m.data.data_points) for rm in data.resource_metrics for sm in rm.scope_metrics
            for m in sm.metrics}


def values(reader: InMemoryMetricReader, name: str) -> dict[frozenset[tuple[str, Any]], float]:
    return {frozenset(p.attributes.items()): p.value for p in points(reader).get(name, [])}


async def settle_call(limiter: Limiter, ticket: Ticket, nanos: int, tokens: int = 0) -> None:
    limits = tuple(check.limits for check in ticket.checks)
    await limiter.settle(ticket, spend_row(ticket.request_id, nanos, tokens=tokens,
                                           periods=limiter.periods(limits, ticket.admitted_at)))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(str(tmp_path / "store.db"))
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def reader() -> tuple[Any, InMemoryMetricReader]:
    return build_meter_provider(Resource({}))


@pytest.fixture
async def limiter(store: Store, tmp_path: Path, clock: Clock, reader: Any) -> AsyncIterator[Limiter]:
    provider, _ = reader
    made = Limiter(MemoryBackend(store), SpendLedger(store, tmp_path / "spend"), meter=provider.get_meter("t"),
                   clock=clock)
    await made.start()
    try:
        yield made
    finally:
        await made.close()
