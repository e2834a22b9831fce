"""The PostgreSQL counter backend, on the real server: two ``Store`` objects on one fresh database are
two gateway instances, driven concurrently with ``asyncio.gather``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from app.calls.limits import BudgetDuration, Scope, ScopeLimits
from app.limits.model import Check, Reason
from app.limits.postgres_backend import PostgresBackend
from app.store import SpendRow, Store, StoreUnavailable
from tests.support.postgres import fresh_database

pytestmark = pytest.mark.postgres

KEY = "k" * 64
KEY_COUNTER = f"key:{KEY}"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def key_limits(**limits: Any) -> ScopeLimits:
    return ScopeLimits(Scope.KEY, KEY, "my-key", **limits)


def team_limits(**limits: Any) -> ScopeLimits:
    return ScopeLimits(Scope.TEAM, "t1", "team-one", **limits)


def spend_row(request_id: str, nanos: int, *, tokens: int = 10, period: int = 0) -> SpendRow:
    return SpendRow(request_id, KEY, "t1", None, "m", "chat", "success", 1, tokens - 1, tokens, nanos, NOW, NOW,
                    period, 0)


async def scalar(url: str, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture
async def stores(database: str) -> AsyncIterator[tuple[Store, Store]]:
    one = await Store.open(database)
    two = await Store.open(database)
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()


@pytest.fixture
def backends(stores: tuple[Store, Store]) -> tuple[PostgresBackend, PostgresBackend]:
    return PostgresBackend(stores[0]), PostgresBackend(stores[1])


async def test_rpm_admits_exactly_n_of_30_concurrent_calls_over_two_instances(backends, database) -> None:
    checks = (Check(key_limits(rpm_limit=7), 0),)
    results = await asyncio.gather(*(backends[i % 2].admit(f"r{i}", checks, 0.0) for i in range(30)))
    refused = [r for r in results if r is not None]
    assert len(refused) == 23
    assert {(r.reason, r.current, r.limit) for r in refused} == {(Reason.RPM, 7, 7)}
    assert all(r.retry_after is not None and 59 <= r.retry_after <= 60 for r in refused)
    assert await scalar(database, "SELECT count(*) FROM limit_events WHERE kind = 0") == 7


async def test_the_rpm_window_slides_and_what_it_passed_is_swept(backends, database) -> None:
    checks = (Check(key_limits(rpm_limit=2), 0),)
    await scalar(database, "INSERT INTO limit_events SELECT $1, 0, 'old' || g, clock_timestamp() - "
                 "interval '61 seconds', 0 FROM generate_series(1, 5) AS g", KEY_COUNTER)
    await scalar(database, "INSERT INTO limit_events VALUES ($1, 0, 'recent', clock_timestamp() - "
                 "interval '50 seconds', 0)", KEY_COUNTER)
    assert await backends[0].admit("a", checks, 0.0) is None  # 'recent' is the only call in the window
    refusal = await backends[1].admit("b", checks, 0.0)
    assert refusal is not None and (refusal.reason, refusal.current) == (Reason.RPM, 2)
    assert refusal.retry_after in (9, 10)  # when 'recent' leaves the window
    assert await scalar(database, "SELECT count(*) FROM limit_events WHERE request_id LIKE 'old%'") == 0


async def test_parallel_admits_2_of_6_concurrent_and_a_settled_or_released_slot_frees(backends) -> None:
    checks = (Check(key_limits(max_parallel_requests=2), 0),)
    results = await asyncio.gather(*(backends[i % 2].admit(f"r{i}", checks, 0.0) for i in range(6)))
    admitted = [i for i, r in enumerate(results) if r is None]
    assert len(admitted) == 2
    assert {(r.reason, r.current, r.retry_after) for r in results if r is not None} == {(Reason.PARALLEL, 2, 1)}
    first, second = admitted
    await backends[1].settle(f"r{first}", checks, 0.0, spend_row(f"r{first}", 5))
    assert await backends[0].admit("again", checks, 0.0) is None
    assert await backends[0].admit("more", checks, 0.0) is not None
    await backends[0].release(f"r{second}", checks)
    assert await backends[1].admit("last", checks, 0.0) is None


async def test_sequential_calls_alternating_instances_admit_exactly_budget_over_cost(backends, stores) -> None:
    checks = (Check(key_limits(max_budget=0.1), 0), Check(team_limits(rpm_limit=1000), 0))
    admitted, refusal = 0, None
    for i in range(20):
        backend = backends[i % 2]
        refusal = await backend.admit(f"r{i}", checks, 0.0)
        if refusal is not None:
            break
        await backend.settle(f"r{i}", checks, 0.0, spend_row(f"r{i}", 12_500_000))  # 0.0125 USD
        admitted += 1
    assert admitted == 8  # floor(0.1 / 0.0125)
    assert refusal is not None and refusal.reason is Reason.BUDGET and refusal.check.limits.scope is Scope.KEY
    assert (refusal.current, refusal.limit, refusal.retry_after) == (0.1, 0.1, None)
    assert await stores[1].period_spend([(KEY_COUNTER, 0)]) == {(KEY_COUNTER, 0): 100_000_000}


async def test_a_budget_counts_its_own_period_and_resets_when_the_next_begins(backends) -> None:
    limits = key_limits(max_budget=0.01, budget_duration=BudgetDuration.parse("1h"))
    period, reset_at = limits.period(datetime.now(UTC))
    checks = (Check(limits, period),)
    await backends[0].settle("last-hour", checks, 0.0, spend_row("last-hour", 50_000_000, period=period - 3600))
    assert await backends[1].admit("a", checks, 0.0) is None  # the last period's spend is not this one's
    await backends[1].settle("a", checks, 0.0, spend_row("a", 10_000_000, period=period))
    refusal = await backends[0].admit("b", checks, 0.0)
    assert refusal is not None and refusal.reason is Reason.BUDGET and refusal.retry_after is not None
    assert reset_at is not None and abs(refusal.retry_after - (reset_at.timestamp() - time.time())) <= 2


async def test_concurrent_calls_crossing_a_budget_overshoot_at_most_the_calls_in_flight(backends, stores) -> None:
    checks = (Check(key_limits(max_budget=0.1), 0), Check(team_limits(max_parallel_requests=100), 0))
    cost, workers = 10_000_000, 6  # 0.01 USD: 10 calls reach the budget

    async def worker(w: int) -> int:
        for i in range(100):
            request_id, backend = f"w{w}-{i}", backends[(w + i) % 2]
            if await backend.admit(request_id, checks, 0.0) is not None:
                return i  # calls admitted (and settled) before this one
            await backend.settle(request_id, checks, 0.0, spend_row(request_id, cost))
        raise AssertionError("the budget never refused")

    total = sum(await asyncio.gather(*(worker(w) for w in range(workers))))
    # Each admission saw fewer than 10 calls settled, and at most `workers` calls are ever in flight.
    assert 10 <= total <= 10 + workers - 1
    assert await stores[0].period_spend([(KEY_COUNTER, 0)]) == {(KEY_COUNTER, 0): total * cost}
    assert await stores[1].spend_total(token_hash=KEY) == (total, total * cost)


async def test_tpm_admits_while_the_tokens_in_the_window_are_below_the_limit(backends) -> None:
    checks = (Check(team_limits(tpm_limit=100), 0),)
    for i in range(3):  # 0, 40 and 80 tokens in the window: each below 100
        backend = backends[i % 2]
        assert await backend.admit(f"r{i}", checks, 0.0) is None
        await backend.settle(f"r{i}", checks, 0.0, spend_row(f"r{i}", 1, tokens=40))
    refusal = await backends[1].admit("r3", checks, 0.0)
    assert refusal is not None and (refusal.reason, refusal.current, refusal.limit) == (Reason.TPM, 120, 100)
    assert refusal.retry_after in (59, 60)


async def test_settling_one_call_on_both_instances_counts_it_once(backends, stores, database) -> None:
    checks = (Check(key_limits(max_budget=1.0, tpm_limit=1000, max_parallel_requests=1), 0),)
    assert await backends[0].admit("r1", checks, 0.0) is None
    row = spend_row("r1", 7_000_000, tokens=33)
    await asyncio.gather(backends[0].settle("r1", checks, 0.0, row), backends[1].settle("r1", checks, 0.0, row))
    await backends[0].settle("r1", checks, 0.0, row)
    assert await stores[0].spend_total(token_hash=KEY) == (1, 7_000_000)
    assert await stores[1].period_spend([(KEY_COUNTER, 0)]) == {(KEY_COUNTER, 0): 7_000_000}
    assert await scalar(database, "SELECT sum(tokens) FROM limit_events WHERE kind = 1") == 33
    assert await scalar(database, "SELECT count(*) FROM limit_leases") == 0


async def test_a_call_refused_by_its_team_counts_nothing_for_its_key(backends, database) -> None:
    checks = (Check(key_limits(rpm_limit=5, max_parallel_requests=10), 0), Check(team_limits(rpm_limit=3), 0))
    results = [await backends[i % 2].admit(f"r{i}", checks, 0.0) for i in range(5)]
    assert results[:3] == [None, None, None]
    assert {(r.reason, r.check.limits.scope) for r in results[3:] if r is not None} == {(Reason.RPM, Scope.TEAM)}
    assert await scalar(database, "SELECT count(*) FROM limit_events WHERE counter = $1", KEY_COUNTER) == 3
    assert await scalar(database, "SELECT count(*) FROM limit_leases") == 3


async def test_a_dead_instances_parallel_slots_free_when_their_leases_expire(database) -> None:
    dying, survivor = await Store.open(database), await Store.open(database)
    try:
        checks = (Check(key_limits(max_parallel_requests=2), 0),)
        short = PostgresBackend(dying, lease_seconds=1.0)
        assert [await short.admit(r, checks, 0.0) for r in ("a", "b")] == [None, None]
        await dying.close()  # gone without settling: only the leases' expiry frees the slots
        backend = PostgresBackend(survivor)
        refusal = await backend.admit("c", checks, 0.0)
        assert refusal is not None and refusal.reason is Reason.PARALLEL
        deadline = time.monotonic() + 10
        for request_id in ("c", "d"):  # both slots come back
            while await backend.admit(request_id, checks, 0.0) is not None:
                assert time.monotonic() < deadline, "the expired leases were never freed"
                await asyncio.sleep(0.05)
        assert await scalar(database, "SELECT array_agg(request_id ORDER BY request_id) FROM limit_leases") == [
            "c", "d"]
    finally:
        await survivor.close()


async def test_a_sqlite_store_is_refused(tmp_path) -> None:
    store = await Store.open(str(tmp_path / "store.db"))
    try:
        with pytest.raises(ValueError, match="PostgreSQL"):
            PostgresBackend(store)
    finally:
        await store.close()


async def test_a_database_that_went_away_is_an_error_for_the_facade(database) -> None:
    store = await Store.open(database)
    try:
        backend = PostgresBackend(store)
        checks = (Check(key_limits(rpm_limit=1), 0),)
        assert await backend.healthy()
        await scalar("postgresql://postgres@127.0.0.1:5432/test", f'DROP DATABASE "{database.rsplit("/", 1)[1]}" '
                     "WITH (FORCE)")
        with pytest.raises(StoreUnavailable):
            await backend.admit("a", checks, 0.0)
        assert not await backend.healthy()
    finally:
        await store.close()
