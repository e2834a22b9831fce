"""The spend log and counters: each call recorded once, counters equal to the log's sums, on SQLite and
PostgreSQL, including two writers at once and an old database upgraded by step 5."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from app.store import SpendRow
from tests.app.store.conftest import Backend

NOW = datetime(2026, 12, 1, tzinfo=UTC)
KEY = "k" * 64


def row(request_id: str, nanos: int, *, team: str | None = "t1", key: str | None = KEY, period: int = 0,
        tokens: int = 3) -> SpendRow:
    return SpendRow(request_id, key, team, None, "m", "chat", "success", 1, tokens - 1, tokens, nanos,
                    NOW, NOW + timedelta(seconds=1), period, period)


async def test_a_row_sent_twice_counts_once(backend: Backend) -> None:
    store = await backend.open()
    try:
        assert await store.record_spend([row("a", 10), row("b", 20)]) == 2
        assert await store.record_spend([row("b", 20), row("c", 5), row("c", 5)]) == 1
        spend = await store.period_spend([(f"key:{KEY}", 0), ("team:t1", 0), ("team:other", 0)])
        assert spend == {(f"key:{KEY}", 0): 35, ("team:t1", 0): 35}
        assert await store.spend_total(team_id="t1") == (3, 35)
        assert [r.request_id for r in await store.spend_logs(token_hash=KEY)] == ["a", "b", "c"]
    finally:
        await store.close()


async def test_periods_are_counted_apart_and_a_failure_without_key_counts_for_its_team(backend: Backend) -> None:
    store = await backend.open()
    try:
        await store.record_spend([row("a", 7, period=100), row("b", 9, period=200), row("c", 4, key=None)])
        spend = await store.period_spend([(f"key:{KEY}", 100), (f"key:{KEY}", 200), ("team:t1", 0)])
        assert spend == {(f"key:{KEY}", 100): 7, (f"key:{KEY}", 200): 9, ("team:t1", 0): 4}
        window = await store.spend_logs(start=NOW, end=NOW + timedelta(seconds=1), team_id="t1")
        assert len(window) == 3
        assert await store.spend_logs(start=NOW + timedelta(seconds=1)) == []
    finally:
        await store.close()


async def test_two_writers_at_once_lose_nothing_and_add_nothing_twice(backend: Backend) -> None:
    one, two = await backend.open(), await backend.open()
    try:
        rows = [row(f"r{i}", 1_000 + i) for i in range(60)]
        # Overlapping batches from two "instances": every row is sent by both.
        await asyncio.gather(*(store.record_spend(rows[i:i + 10]) for i in range(0, 60, 5)
                               for store in (one, two)))
        expected = sum(r.spend_nanos for r in rows)
        assert await one.period_spend([("team:t1", 0)]) == {("team:t1", 0): expected}
        assert await two.spend_total(team_id="t1") == (60, expected)
    finally:
        await one.close()
        await two.close()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 10**12), st.sampled_from([0, 60, 120])),
                min_size=1, max_size=40))
def test_counters_equal_the_sums_of_the_log_on_generated_batches(tmp_path_factory, entries) -> None:
    async def run() -> None:
        backend = Backend("sqlite", str(tmp_path_factory.mktemp("spend") / "s.db"), None)
        store = await backend.open()
        try:
            for start in range(0, len(entries), 7):  # batches that repeat ids within and across
                await store.record_spend([row(f"r{i}", n, period=p) for i, n, p in entries[start:start + 7]])
            first = {}
            for i, n, p in entries:
                first.setdefault(i, (n, p))
            for period in (0, 60, 120):
                want = sum(n for n, p in first.values() if p == period)
                got = await store.period_spend([("team:t1", period)])
                assert got.get(("team:t1", period), 0) == want
        finally:
            await store.close()
    asyncio.run(run())


async def test_a_version_4_database_gains_the_limit_columns_and_spend_tables(backend: Backend) -> None:
    store = await backend.open()
    await store.create_team("t1", None, [], {})
    async with store._engines.base.begin() as conn:  # rewind to step 4's shape
        for table in ("spend_logs", "spend_counters"):
            await conn.execute(text(f"DROP TABLE {table}"))
        for table in ("teams", "keys"):
            await conn.execute(text(f"ALTER TABLE {table} DROP COLUMN max_budget"))
            await conn.execute(text(f"ALTER TABLE {table} DROP COLUMN rpm_limit"))
        await conn.execute(text("UPDATE schema_version SET version = 4"))
    await store.close()
    store = await backend.open()
    try:
        team = await store.update_team("t1", max_budget=2.5, rpm_limit=10)
        assert (team.max_budget, team.rpm_limit) == (2.5, 10)
        assert await store.record_spend([row("a", 1)]) == 1
    finally:
        await store.close()
