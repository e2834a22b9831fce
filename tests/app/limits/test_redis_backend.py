"""The Redis backend against the real Redis on 127.0.0.1:6379: two backend instances stand for two gateways
sharing one Redis and one store, each test under its own key prefix. Exact counts under concurrency,
settlement once per request id, budget counters seeded from a real SQLite store, and a redis-server of
the test's own killed with -9 and started again."""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from app.calls.limits import BudgetDuration, Scope, ScopeLimits, usd_to_nanos
from app.limits.model import Check, Reason, Refusal
from app.limits.redis_backend import DONE_SECONDS, RedisBackend, RedisUnavailable
from app.store import SpendRow, Store
from tests.support.redis_server import SHARED_URL, delete_prefixed, temporary_redis

KEY_HASH = "a" * 64
TEAM = "team-1"


@dataclass
class Setup:
    prefix: str
    store: Store
    one: RedisBackend
    two: RedisBackend
    client: aioredis.Redis

    def backend(self, index: int) -> RedisBackend:
        return (self.one, self.two)[index % 2]


@pytest.fixture
async def setup(tmp_path) -> AsyncIterator[Setup]:
    prefix = f"spangate-test-{secrets.token_hex(6)}:"
    store = await Store.open(str(tmp_path / "store.db"))
    one, two = (RedisBackend(SHARED_URL, store=store, key_prefix=prefix) for _ in range(2))
    client = aioredis.Redis.from_url(SHARED_URL)
    try:
        yield Setup(prefix, store, one, two, client)
    finally:
        await delete_prefixed(prefix)
        for closing in (one, two):
            await closing.close()
        await client.aclose()
        await store.close()


def key_limits(**fields: object) -> ScopeLimits:
    return ScopeLimits(Scope.KEY, KEY_HASH, "my-key", **fields)  # type: ignore[arg-type]


def team_limits(**fields: object) -> ScopeLimits:
    return ScopeLimits(Scope.TEAM, TEAM, "my-team", **fields)  # type: ignore[arg-type]


def check(limits: ScopeLimits) -> Check:
    return Check(limits, limits.period(datetime.now(UTC))[0])


def row(request_id: str, nanos: int = 0, tokens: int = 0, checks: tuple[Check, ...] = ()) -> SpendRow:
    periods = {c.limits.scope: c.period for c in checks}
    now = datetime.now(UTC)
    return SpendRow(request_id, KEY_HASH, TEAM, None, "gpt-4o", "chat", "success", tokens, 0, tokens, nanos,
                    now, now, periods.get(Scope.KEY, 0), periods.get(Scope.TEAM, 0))


async def admit_all(setup: Setup, checks: tuple[Check, ...], count: int) -> list[Refusal | None]:
    """``count`` admissions at once, alternating between the two instances."""
    return await asyncio.gather(*(setup.backend(i).admit(f"req-{i}", checks, time.time()) for i in range(count)))


async def test_rpm_admits_exactly_n_of_30_concurrent_calls_over_two_instances(setup: Setup) -> None:
    checks = (check(key_limits(rpm_limit=7)), check(team_limits(rpm_limit=1000)))
    results = await admit_all(setup, checks, 30)
    refused = [r for r in results if r is not None]
    assert len(refused) == 23
    assert {(r.reason, r.check.limits.scope, r.current, r.limit) for r in refused} == {(Reason.RPM, Scope.KEY, 7, 7)}
    assert all(r.retry_after is not None and 1 <= r.retry_after <= 60 for r in refused)
    # A refused call counts nowhere: the team saw the 7 admitted, not the 30 tried.
    assert await setup.client.zcard(f"{setup.prefix}rpm:team:{TEAM}") == 7
    assert await setup.client.zcard(f"{setup.prefix}rpm:key:{KEY_HASH}") == 7


async def test_parallel_admits_exactly_two_of_six_and_settle_or_release_frees_a_slot(setup: Setup) -> None:
    checks = (check(team_limits(max_parallel_requests=2)),)
    results = await admit_all(setup, checks, 6)
    admitted = [f"req-{i}" for i, r in enumerate(results) if r is None]
    assert len(admitted) == 2
    assert {(r.reason, r.current, r.limit, r.retry_after) for r in results if r} == {(Reason.PARALLEL, 2, 2, 1)}
    await setup.two.settle(admitted[0], checks, time.time(), row(admitted[0]))
    assert await setup.one.admit("req-7", checks, time.time()) is None
    assert await setup.one.admit("req-8", checks, time.time()) is not None
    await setup.one.release(admitted[1], checks)
    assert await setup.two.admit("req-9", checks, time.time()) is None
    assert sorted(await setup.client.zrange(f"{setup.prefix}par:team:{TEAM}", 0, -1)) == [b"req-7", b"req-9"]


async def test_budget_admits_floor_of_budget_over_cost_calls_alternating_between_instances(setup: Setup) -> None:
    limits = key_limits(max_budget=0.01, budget_duration=BudgetDuration.parse("30d"))
    checks = (check(limits), check(team_limits(max_budget=5.0)))
    cost = usd_to_nanos(0.0025)  # a call is admitted while the spend is below the budget (LiteLLM's rule):
    admitted = 0  # floor(budget / cost) calls when the cost divides the budget, one more when it does not
    for i in range(20):
        refusal = await setup.backend(i).admit(f"req-{i}", checks, time.time())
        if refusal is not None:
            break
        admitted += 1
        await setup.backend(i + 1).settle(f"req-{i}", checks, time.time(), row(f"req-{i}", cost, checks=checks))
    assert admitted == usd_to_nanos(0.01) // cost == 4
    assert refusal is not None and refusal.reason is Reason.BUDGET and refusal.check.limits.scope is Scope.KEY
    assert (refusal.current, refusal.limit) == (0.01, 0.01)
    reset_at = limits.period(datetime.now(UTC))[1]
    assert reset_at is not None and abs(refusal.retry_after - (reset_at.timestamp() - time.time())) < 5
    key = f"{setup.prefix}spend:key:{KEY_HASH}:{checks[0].period}"
    assert int(await setup.client.get(key)) == 4 * cost
    assert abs(await setup.client.expiretime(key) - (reset_at.timestamp() + 86400)) <= 1
    assert int(await setup.client.get(f"{setup.prefix}spend:team:{TEAM}:0")) == 4 * cost


async def test_concurrent_calls_on_a_budget_are_admitted_until_settled_spend_reaches_it(setup: Setup) -> None:
    checks = (check(team_limits(max_budget=0.001)),)
    # Nothing settled yet: all are admitted (a budget bounds spend settled; the calls in flight overshoot).
    assert await admit_all(setup, checks, 10) == [None] * 10
    await asyncio.gather(*(setup.backend(i).settle(f"req-{i}", checks, time.time(), row(f"req-{i}", 200_000))
                           for i in range(10)))
    refusal = await setup.one.admit("late", checks, time.time())
    assert refusal is not None
    assert (refusal.reason, refusal.current, refusal.retry_after) == (Reason.BUDGET, 0.002, None)


async def test_a_refusal_in_one_scope_counts_nothing_in_the_others(setup: Setup) -> None:
    checks = (check(key_limits(rpm_limit=100, max_parallel_requests=50)), check(team_limits(max_parallel_requests=1)))
    assert await setup.one.admit("first", checks, time.time()) is None
    refusal = await setup.two.admit("second", checks, time.time())
    assert refusal is not None and (refusal.reason, refusal.check.limits.scope) == (Reason.PARALLEL, Scope.TEAM)
    assert await setup.client.zrange(f"{setup.prefix}rpm:key:{KEY_HASH}", 0, -1) == [b"first"]
    assert await setup.client.zrange(f"{setup.prefix}par:key:{KEY_HASH}", 0, -1) == [b"first"]


async def test_tpm_admits_while_the_tokens_settled_in_the_window_are_below_the_limit(setup: Setup) -> None:
    checks = (check(key_limits(tpm_limit=100)),)
    admitted = 0
    for i in range(10):
        if await setup.backend(i).admit(f"req-{i}", checks, time.time()) is not None:
            break
        admitted += 1
        await setup.backend(i + 1).settle(f"req-{i}", checks, time.time(), row(f"req-{i}", tokens=40))
    assert admitted == 3  # 0, 40 and 80 tokens used are below 100; 120 is not
    results = await admit_all(setup, checks, 10)
    assert {(r.reason, r.current, r.limit) for r in results if r} == {(Reason.TPM, 120, 100)}
    assert all(r is not None and 1 <= r.retry_after <= 60 for r in results)
    # The running sum, lost apart from its log, is rebuilt from the log.
    await setup.client.delete(f"{setup.prefix}tpmsum:key:{KEY_HASH}")
    refusal = await setup.two.admit("rebuilt", checks, time.time())
    assert refusal is not None and refusal.current == 120
    assert int(await setup.client.get(f"{setup.prefix}tpmsum:key:{KEY_HASH}")) == 120


async def test_settlement_counts_once_per_request_id_whichever_instance_repeats_it(setup: Setup) -> None:
    checks = (check(key_limits(max_budget=1.0, tpm_limit=10_000, max_parallel_requests=5)),)
    assert await setup.one.admit("req", checks, time.time()) is None
    settled = row("req", 12_345, tokens=77)
    await asyncio.gather(*(setup.backend(i).settle("req", checks, time.time(), settled) for i in range(6)))
    assert int(await setup.client.get(f"{setup.prefix}spend:key:{KEY_HASH}:0")) == 12_345
    assert await setup.client.zrange(f"{setup.prefix}tpm:key:{KEY_HASH}", 0, -1) == [b"req:77"]
    assert await setup.client.zcard(f"{setup.prefix}par:key:{KEY_HASH}") == 0
    assert 0 < await setup.client.ttl(f"{setup.prefix}done:req") <= DONE_SECONDS


async def test_every_key_expires(setup: Setup) -> None:
    checks = (check(key_limits(max_budget=1.0, rpm_limit=10, tpm_limit=1000, max_parallel_requests=3)),)
    assert await setup.one.admit("req", checks, time.time()) is None
    await setup.one.admit("held", checks, time.time())
    await setup.one.settle("req", checks, time.time(), row("req", 5, tokens=3))
    await setup.one.admit("again", checks, time.time())  # builds the tpm sum
    keys = [key async for key in setup.client.scan_iter(match=f"{setup.prefix}*")]
    assert len(keys) == 6  # spend, rpm, tpm, tpmsum, par, done
    ttls = {key.decode().removeprefix(setup.prefix).split(":")[0]: await setup.client.ttl(key) for key in keys}
    assert all(ttl > 0 for ttl in ttls.values())
    assert ttls["rpm"] <= 120 and ttls["tpm"] <= 120 and ttls["tpmsum"] <= 120 and ttls["par"] <= 3600
    assert ttls["spend"] <= 7 * 86400 and ttls["done"] <= DONE_SECONDS


async def test_budget_counters_are_seeded_from_the_store_and_again_after_a_flush(setup: Setup) -> None:
    checks = (check(key_limits(max_budget=0.01)),)
    await setup.store.record_spend([row("earlier", usd_to_nanos(0.007))])
    assert await setup.one.admit("req-1", checks, time.time()) is None
    assert int(await setup.client.get(f"{setup.prefix}spend:key:{KEY_HASH}:0")) == usd_to_nanos(0.007)
    second = row("req-1", usd_to_nanos(0.002))
    await setup.two.settle("req-1", checks, time.time(), second)
    await setup.store.record_spend([second])  # what the spend ledger does beside the backend
    await delete_prefixed(setup.prefix)  # Redis forgot everything of ours
    assert await setup.two.admit("req-2", checks, time.time()) is None  # 0.009 < 0.01
    await setup.one.settle("req-2", checks, time.time(), row("req-2", usd_to_nanos(0.002)))
    refusal = await setup.one.admit("req-3", checks, time.time())
    assert refusal is not None and refusal.reason is Reason.BUDGET and refusal.current == pytest.approx(0.011)


@pytest.mark.slow
async def test_a_killed_redis_raises_while_down_and_counts_again_reseeded_from_the_store(tmp_path) -> None:
    store = await Store.open(str(tmp_path / "store.db"))
    checks = (check(team_limits(max_budget=0.01, rpm_limit=100)),)
    with temporary_redis() as server:
        backend = RedisBackend(host="127.0.0.1", port=server.port, store=store, timeout=0.5)
        try:
            assert await backend.admit("before", checks, time.time()) is None
            settled = row("before", usd_to_nanos(0.006))
            await backend.settle("before", checks, time.time(), settled)
            await store.record_spend([settled])
            server.kill()
            with pytest.raises(RedisUnavailable) as raised:
                await backend.admit("down", checks, time.time())
            assert str(server.port) in str(raised.value)
            with pytest.raises(RedisUnavailable):
                await backend.settle("down", checks, time.time(), row("down"))
            assert await backend.healthy() is False
            server.start()  # empty: no counters, no scripts
            assert await backend.healthy() is True
            assert await backend.admit("after", checks, time.time()) is None
            await backend.settle("after", checks, time.time(), row("after", usd_to_nanos(0.005)))
            refusal = await backend.admit("over", checks, time.time())
            assert refusal is not None and refusal.current == pytest.approx(0.011)  # 0.006 re-seeded + 0.005
        finally:
            await backend.close()
            await store.close()


async def test_a_redis_that_never_answers_raises_within_the_timeout_and_names_no_password(tmp_path) -> None:
    store = await Store.open(str(tmp_path / "store.db"))
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        backend = RedisBackend(f"redis://:hunter2-secret@127.0.0.1:{port}/0", store=store, timeout=0.2)
        try:
            started = time.monotonic()
            with pytest.raises(RedisUnavailable) as raised:
                await backend.admit("req", (check(key_limits(rpm_limit=5)),), time.time())
            assert time.monotonic() - started < 2
            assert f"127.0.0.1:{port}" in str(raised.value)
            assert "hunter2" not in f"{raised.value} {raised.value.__cause__!r}"
            assert await backend.healthy() is False
        finally:
            await backend.close()
            await store.close()


async def test_an_admission_repeated_for_one_request_id_counts_once(setup: Setup) -> None:
    checks = (check(key_limits(rpm_limit=2, max_parallel_requests=1)),)
    for backend in (setup.one, setup.two, setup.one):  # a script retried after its reply was lost
        assert await backend.admit("req", checks, time.time()) is None
    assert await setup.client.zcard(f"{setup.prefix}rpm:key:{KEY_HASH}") == 1
    assert await setup.client.zcard(f"{setup.prefix}par:key:{KEY_HASH}") == 1
    refusal = await setup.two.admit("other", checks, time.time())
    assert refusal is not None and refusal.reason is Reason.PARALLEL
