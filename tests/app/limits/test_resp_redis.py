"""The RESP2 client against the real Redis on 127.0.0.1:6379 (each test under its own key prefix) and
against a redis-server of the test's own: the backend's scripts give what redis-py gets on generated
limit configurations, replies stay matched under concurrency, cancellation, a killed connection and a
timeout, and AUTH, SELECT and the URL forms behave."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
import uvloop
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app.calls.limits import BudgetDuration, Scope, ScopeLimits
from app.config.keys import ConfigError
from app.limits import redis_scripts
from app.limits.model import Check
from app.limits.redis_backend import ADMIT_SHA, DONE_SECONDS, SETTLE_SHA, _admit_spec, _settle_spec
from app.limits.resp import NoScriptError, RedisAddress, RedisUnavailable, ReplyError, RespClient
from tests.support.redis_server import SHARED_URL, delete_prefixed, temporary_redis

SHARED = RedisAddress.from_url(SHARED_URL)


def new_prefix() -> str:
    return f"spangate-test-{secrets.token_hex(6)}:"


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    chosen = new_prefix()
    yield chosen
    await delete_prefixed(chosen)


@pytest.fixture
async def client() -> AsyncIterator[RespClient]:
    opened = RespClient(SHARED)
    yield opened
    await opened.close()


# --- the backend's scripts: our client and redis-py on the same generated calls, each under its prefix

_usd = st.one_of(st.none(), st.integers(0, 6).map(lambda n: n * 0.000001))
_limits = st.builds(
    lambda scope, budget, monthly, rpm, tpm, par: ScopeLimits(
        scope, "a" * 64 if scope is Scope.KEY else "team-1", "x", max_budget=budget,
        budget_duration=BudgetDuration.parse("30d") if monthly else None, rpm_limit=rpm, tpm_limit=tpm,
        max_parallel_requests=par),
    st.sampled_from(Scope), _usd, st.booleans(), st.none() | st.integers(1, 3), st.none() | st.integers(1, 300),
    st.none() | st.integers(1, 3))
_admit = st.tuples(st.just("admit"), st.integers(0, 5))
_settle = st.tuples(st.just("settle"), st.integers(0, 5), st.integers(0, 3000), st.integers(0, 150))
_calls = st.lists(st.one_of(_admit, _admit, _settle), min_size=1, max_size=16)  # two admissions to a settlement


class Side:
    """One client's run of the calls under its own prefix: ``run`` is EVALSHA, ``seed`` the SET NX."""

    def __init__(self, prefix: str, ours: RespClient | None, theirs: aioredis.Redis) -> None:
        self.prefix, self.ours, self.theirs = prefix, ours, theirs

    async def evalsha(self, sha: str, args: list[Any]) -> Any:
        if self.ours is not None:
            return await self.ours.execute("EVALSHA", sha, 0, *args)
        return await self.theirs.execute_command("EVALSHA", sha, 0, *args)

    async def seed(self, key: str, value: int) -> None:
        if self.ours is not None:
            assert await self.ours.execute("SET", key, value, "NX", "EX", 300) == b"OK"
        else:
            assert await self.theirs.set(key, value, nx=True, ex=300) is True

    async def call(self, checks: list[Check], call: tuple[Any, ...], seed: int) -> Any:
        rid = f"req-{call[1]}"
        if call[0] == "settle":
            periods = {check.limits.counter: check.period for check in checks}
            return await self.evalsha(SETTLE_SHA, [self.prefix, rid, call[2], call[3], DONE_SECONDS, *(
                _settle_spec(check, periods[check.limits.counter]) for check in checks)])
        args = [self.prefix, rid, 3_600_000, *map(_admit_spec, checks)]
        reply = await self.evalsha(ADMIT_SHA, args)
        if reply[0] == b"seed":
            for index in reply[1:]:
                check = checks[index - 1]
                await self.seed(f"{self.prefix}spend:{check.limits.counter}:{check.period}", seed)
            return [reply, await self.evalsha(ADMIT_SHA, args)]
        return reply

    async def state(self) -> dict[str, Any]:
        """Every key of this side, its prefix cut: strings by value, sorted sets by member (their scores are
        times), and whether it expires."""
        found = {}
        async for key in self.theirs.scan_iter(match=f"{self.prefix}*", count=1000):
            kind = (await self.theirs.type(key)).decode()
            value = await self.theirs.get(key) if kind == "string" else sorted(await self.theirs.zrange(key, 0, -1))
            found[key.decode().removeprefix(self.prefix)] = (kind, value, await self.theirs.ttl(key) > 0)
        return found


def _masked(reply: Any) -> Any:
    """A script's reply without what depends on the moment it ran: Redis's time and retry milliseconds."""
    if isinstance(reply, list) and reply and isinstance(reply[0], list):
        return [_masked(part) for part in reply]
    if isinstance(reply, list) and reply[0] == b"ok":
        assert isinstance(reply[1], int)
        return [b"ok"]
    if isinstance(reply, list) and reply[0] == b"refuse":
        assert isinstance(reply[4], int)
        return [*reply[:4], reply[4] if reply[4] < 0 else "retry"]
    return reply


def _kind(reply: Any) -> str:
    if isinstance(reply, int):
        return f"settled {reply}"
    if isinstance(reply[0], list):
        return "seeded, then " + _kind(reply[1])
    return " ".join(part.decode() if isinstance(part, bytes) else str(part) for part in reply[:3:2])


async def _differential(checks: list[Check], calls: list[tuple[Any, ...]], seed: int) -> None:
    theirs = aioredis.Redis.from_url(SHARED_URL)
    ours = RespClient(SHARED)
    sides = [Side(new_prefix(), ours, theirs), Side(new_prefix(), None, theirs)]
    try:
        for script in (redis_scripts.ADMIT, redis_scripts.SETTLE):
            await theirs.script_load(script)
        for call in calls:
            mine, reference = [await side.call(checks, call, seed) for side in sides]
            assert _masked(mine) == _masked(reference), call
            event(_kind(mine))  # --hypothesis-show-statistics: every kind of reply occurs
            assert type(mine) is type(reference)
        assert await sides[0].state() == await sides[1].state()
    finally:
        for side in sides:
            await delete_prefixed(side.prefix)
        await ours.close()
        await theirs.aclose()


@settings(max_examples=80, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_limits, min_size=1, max_size=2, unique_by=lambda limits: limits.scope), _calls,
       st.integers(0, 7000))
def test_the_scripts_reply_as_they_do_to_redis_py_on_generated_limits(limits: list[ScopeLimits],
                                                                      calls: list[tuple[Any, ...]], seed: int) -> None:
    now = datetime.now(UTC)
    checks = [Check(scope, scope.period(now)[0]) for scope in limits]
    uvloop.run(_differential(checks, calls, seed))  # the gateway's loop: uvloop's transports, not asyncio's


# --- the connection: pipelining, cancellation, loss, timeout, errors


async def test_concurrent_commands_share_one_connection_and_each_gets_its_own_reply(client, prefix) -> None:
    ids = await asyncio.gather(*(client.execute("CLIENT", "ID") for _ in range(5)))
    assert len(set(ids)) == 1
    await asyncio.gather(*(client.execute("SET", f"{prefix}{i}", f"value-{i}") for i in range(300)))
    values = await asyncio.gather(*(client.execute("GET", f"{prefix}{i}") for i in range(300)))
    assert values == [f"value-{i}".encode() for i in range(300)]
    assert await client.execute("GET", f"{prefix}missing") is None
    assert await client.execute("CLIENT", "ID") == ids[0]


async def test_a_cancelled_command_leaves_the_replies_of_the_others_in_order(prefix) -> None:
    client = RespClient(SHARED, timeout=10)
    try:
        await client.execute("SET", f"{prefix}b", "B")
        client_id = await client.execute("CLIENT", "ID")
        cancelled = asyncio.ensure_future(client.execute("BLPOP", f"{prefix}never", 0.3))  # its reply: nil
        await _until_blocked(client_id)
        cancelled.cancel()
        assert await client.execute("GET", f"{prefix}b") == b"B"  # not the BLPOP's nil, read and dropped
        assert cancelled.cancelled()
    finally:
        await client.close()


async def test_an_error_reply_raises_and_the_connection_goes_on(client, prefix) -> None:
    with pytest.raises(NoScriptError, match="NOSCRIPT"):
        await client.execute("EVALSHA", "0" * 40, 0)
    await client.execute("SET", f"{prefix}s", "x")
    with pytest.raises(ReplyError) as raised:
        await client.execute("ZADD", f"{prefix}s", 1, "m")
    assert raised.value.code == "WRONGTYPE" and not isinstance(raised.value, NoScriptError)
    assert await client.execute("PING") == b"PONG"


async def _until_blocked(client_id: int, kill: bool = False) -> None:
    """Polls Redis until the connection is blocked in BLPOP (every command sent before it is in Redis)."""
    watcher = aioredis.Redis.from_url(SHARED_URL)
    try:
        while "flags=b" not in (await watcher.execute_command("CLIENT", "LIST", "ID", client_id)).decode():
            await asyncio.sleep(0.005)
        if kill:
            await watcher.execute_command("CLIENT", "KILL", "ID", client_id)
    finally:
        await watcher.aclose()


async def test_a_lost_connection_fails_every_command_in_flight_at_once_and_the_next_reconnects(prefix) -> None:
    client = RespClient(SHARED, timeout=10)
    try:
        first = await client.execute("CLIENT", "ID")
        in_flight = [asyncio.ensure_future(client.execute("BLPOP", f"{prefix}never", 8))]
        in_flight += [asyncio.ensure_future(client.execute("PING")) for _ in range(4)]
        await _until_blocked(first, kill=True)
        results = await asyncio.gather(*in_flight, return_exceptions=True)
        assert all(isinstance(result, RedisUnavailable) for result in results), results
        assert "127.0.0.1:6379" in str(results[0])
        assert await client.execute("PING") == b"PONG"
        assert await client.execute("CLIENT", "ID") != first
    finally:
        await client.close()


async def test_no_reply_within_the_timeout_fails_the_commands_in_flight_and_the_next_reconnects(prefix) -> None:
    client = RespClient(SHARED, timeout=0.2)
    try:
        started = time.monotonic()
        in_flight = [client.execute("BLPOP", f"{prefix}never", 3), client.execute("PING")]
        results = await asyncio.gather(*in_flight, return_exceptions=True)
        assert time.monotonic() - started < 1.5
        assert all(isinstance(result, RedisUnavailable) and "within 0.2 s" in str(result) for result in results)
        assert await client.execute("PING") == b"PONG"
    finally:
        await client.close()


async def test_a_closed_port_is_unavailable_naming_host_and_port() -> None:
    with temporary_redis() as server:
        port = server.port
    client = RespClient(RedisAddress.from_url(f"redis://:hunter2@127.0.0.1:{port}/0"))
    with pytest.raises(RedisUnavailable) as raised:
        await client.execute("PING")
    assert f"127.0.0.1:{port}" in str(raised.value) and "hunter2" not in str(raised.value)
    await client.close()


# --- AUTH, SELECT and the URL


async def test_auth_by_password_and_by_user_and_select_the_db_from_the_url() -> None:
    with temporary_redis() as server:
        admin = aioredis.Redis(port=server.port)
        await admin.execute_command("ACL", "SETUSER", "alice", "on", ">p@ss w0rd", "~*", "+@all")
        await admin.config_set("requirepass", "hunter2")
        await admin.aclose()
        base = f"127.0.0.1:{server.port}"
        for who, url in (("default", f"redis://:hunter2@{base}/3"), ("alice", f"redis://alice:p%40ss%20w0rd@{base}/3")):
            client = RespClient(RedisAddress.from_url(url))
            await client.execute("SET", f"by-{who}", who)
            assert await client.execute("ACL", "WHOAMI") == who.encode()
            await client.close()
        reader = aioredis.Redis(port=server.port, password="hunter2", db=3)
        assert await reader.mget("by-default", "by-alice") == [b"default", b"alice"]  # both in db 3
        await reader.aclose()
        wrong = RespClient(RedisAddress.from_url(f"redis://alice:not-it-secret@{base}/0"))
        with pytest.raises(RedisUnavailable) as raised:
            await wrong.execute("PING")
        assert base in str(raised.value) and "AUTH refused" in str(raised.value)
        assert "not-it-secret" not in str(raised.value)
        await wrong.close()


def test_the_url_gives_host_port_user_password_and_db() -> None:
    assert RedisAddress.from_url("redis://u:p%2Fw@redis.internal:6380/2") == RedisAddress(
        "redis.internal", 6380, "u", "p/w", 2)
    assert RedisAddress.from_url("redis://localhost") == RedisAddress("localhost", 6379, None, None, 0)
    assert RedisAddress.from_url("redis://:secret@h/0").where == "h:6379"


@pytest.mark.parametrize(("url", "says"), [
    ("rediss://h:6380/0", "rediss:// TLS"), ("unix:///run/redis.sock", "unix://"),
    ("redis://h/0?ssl_cert_reqs=none", "query parameters"), ("redis://h/zero", "db number"),
    ("redis://h:99999/0", "port"),
])
def test_a_url_this_client_cannot_serve_stops_start_up_saying_why(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        RedisAddress.from_url(url)
