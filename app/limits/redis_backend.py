"""Counters shared by every gateway instance through Redis: one atomic script per admission, one per settlement.

Redis holds the live counters, the store holds the durable truth. A budget counter missing from Redis
(first use, a restart that kept nothing, an eviction) is seeded from ``store.period_spend`` with
``SET NX`` before it is read, so every instance starts from the same number and only one seed wins.
The scripts read Redis's clock, so instances whose clocks disagree still share one window.

Errors: an unreachable Redis, or one that does not answer within ``timeout``, raises ``RedisUnavailable``
(a ``ConnectionError``); the ``Limiter`` decides whether calls then pass or fail. The client reconnects
by itself on the next call once Redis is back, and reloads the scripts a restarted Redis has forgotten.
The client is ``app.limits.resp`` (RESP2 on one pipelined connection), not redis-py: redis-py's ~57 us
of CPU per command made an admission and a settlement cost ~250 us, over issue 24's 100 us.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from app.calls.limits import nanos_to_usd
from app.limits import redis_scripts
from app.limits.model import Check, Reason, Refusal
from app.limits.resp import NoScriptError, RedisAddress, RedisUnavailable, ReplyError, RespClient
from app.store import SpendRow

DONE_SECONDS = 7200  # a request id settles once within this long (a settlement retried, a ticket settled twice)
SPEND_IDLE_SECONDS = 7 * 86400  # a budget without a duration: kept while used, re-seeded after a week unused
SEED_ROUNDS = 3


class SpendSource(Protocol):
    async def period_spend(self, counters: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]: ...


class RedisBackend:
    name = "redis"

    def __init__(self, url: str | None = None, *, host: str = "127.0.0.1", port: int = 6379,
                 password: str | None = None, db: int = 0, store: SpendSource, key_prefix: str = "spangate:",
                 lease_seconds: int = 3600, timeout: float = 0.5) -> None:
        """``url``: ``redis://[[user]:password@]host[:port][/db]`` (a ``ConfigError`` for any other)."""
        address = RedisAddress.from_url(url) if url is not None else RedisAddress(host, port, None, password, db)
        self._client = RespClient(address, timeout=timeout)
        self._where = address.where  # never the password
        self._store = store
        self._prefix = key_prefix
        self._lease_ms = int(lease_seconds * 1000)

    async def admit(self, request_id: str, checks: tuple[Check, ...], now: float) -> Refusal | None:
        counted = [check for check in checks if _counts(check)]
        if not counted:
            return None
        args = [self._prefix, request_id, self._lease_ms, *map(_admit_spec, counted)]
        for _ in range(SEED_ROUNDS):
            reply = await self._run(redis_scripts.ADMIT, ADMIT_SHA, args)
            if reply[0] == b"ok":
                return None
            if reply[0] == b"refuse":
                return _refusal(counted, reply, now)
            await self._seed([counted[int(index) - 1] for index in reply[1:]], now)
        raise RedisUnavailable(f"redis at {self._where}: the spend counters did not stay seeded")

    async def settle(self, request_id: str, checks: tuple[Check, ...], now: float, row: SpendRow) -> None:
        counted = [check for check in checks if _counts(check)]
        if not counted:
            return
        periods = dict(row.counters())  # the periods the store adds this row to: Redis mirrors the store
        args = [self._prefix, request_id, row.spend_nanos, row.total_tokens, DONE_SECONDS,
                *(_settle_spec(check, periods.get(check.limits.counter)) for check in counted)]
        await self._run(redis_scripts.SETTLE, SETTLE_SHA, args)

    async def release(self, request_id: str, checks: tuple[Check, ...]) -> None:
        slots = [f"{self._prefix}par:{c.limits.counter}" for c in checks if c.limits.max_parallel_requests is not None]
        if slots:
            _raise_first(await self._client.execute_many([("ZREM", key, request_id) for key in slots]))

    async def healthy(self) -> bool:
        try:
            return await self._client.execute("PING") == b"PONG"
        except (RedisUnavailable, ReplyError):
            return False

    async def close(self) -> None:
        await self._client.close()

    async def _run(self, script: str, sha: str, args: Sequence[Any]) -> Any:
        try:
            return await self._client.execute("EVALSHA", sha, 0, *args)
        except NoScriptError:  # a new or restarted Redis: load once, then run by hash again
            await self._client.execute("SCRIPT", "LOAD", script)
            return await self._client.execute("EVALSHA", sha, 0, *args)
        except ReplyError as exc:
            if exc.code == "LOADING":  # a restarted Redis still reading its data set: down for now
                raise RedisUnavailable(f"redis at {self._where}: {exc.message}") from None
            raise

    async def _seed(self, checks: Sequence[Check], now: float) -> None:
        counters = [(check.limits.counter, check.period) for check in checks]
        spent = await self._store.period_spend(counters)
        _raise_first(await self._client.execute_many([
            ("SET", self._spend_key(*counter), spent.get(counter, 0), "NX", *_spend_expiry(check, now))
            for check, counter in zip(checks, counters, strict=True)]))

    def _spend_key(self, counter: str, period: int) -> str:
        return f"{self._prefix}spend:{counter}:{period}"


ADMIT_SHA = redis_scripts.sha1(redis_scripts.ADMIT)
SETTLE_SHA = redis_scripts.sha1(redis_scripts.SETTLE)


def _counts(check: Check) -> bool:
    limits = check.limits
    return (limits.max_budget is not None or limits.rpm_limit is not None or limits.tpm_limit is not None
            or limits.max_parallel_requests is not None)


def _admit_spec(check: Check) -> str:
    limits = check.limits
    values = (limits.max_budget_nanos, limits.rpm_limit, limits.tpm_limit, limits.max_parallel_requests)
    return " ".join([str(check.period), *("-" if value is None else str(value) for value in values), limits.counter])


def _settle_spec(check: Check, period: int | None) -> str:
    """``period``: the one the store adds the row to, None when the row does not count for this scope."""
    limits = check.limits
    add_spend = limits.max_budget is not None and period is not None
    idle = SPEND_IDLE_SECONDS if limits.budget_duration is None else 0
    return (f"{check.period if period is None else period} {int(add_spend)} {idle} {int(limits.tpm_limit is not None)}"
            f" {int(limits.max_parallel_requests is not None)} {limits.counter}")


def _period_end(check: Check) -> float | None:
    duration = check.limits.budget_duration
    if duration is None:
        return None
    start = datetime.fromtimestamp(check.period, UTC)
    return duration.period(check.limits.budget_anchor, start)[1].timestamp()


def _spend_expiry(check: Check, now: float) -> tuple[str, int]:
    end = _period_end(check)
    if end is None:
        return ("EX", SPEND_IDLE_SECONDS)
    return ("EXAT", max(int(end) + 86400, int(now) + 60))  # a day past the period, for late settlements


def _raise_first(replies: list[Any]) -> None:
    for reply in replies:
        if isinstance(reply, ReplyError):
            raise reply


def _refusal(checks: Sequence[Check], reply: list[Any], now: float) -> Refusal:
    check = checks[int(reply[1]) - 1]
    reason, current, retry_ms = Reason(reply[2].decode()), float(reply[3]), int(reply[4])
    limits = check.limits
    if reason is Reason.BUDGET:
        end = _period_end(check)
        retry = None if end is None else max(1, math.ceil(end - now))
        return Refusal(reason, check, nanos_to_usd(int(current)), float(limits.max_budget or 0), retry)
    limit = {Reason.RPM: limits.rpm_limit, Reason.TPM: limits.tpm_limit,
             Reason.PARALLEL: limits.max_parallel_requests}[reason]
    # A parallel slot frees when any call in flight ends, which no one can foretell: ask for a second.
    retry = 1 if retry_ms < 0 else max(1, math.ceil(retry_ms / 1000))
    return Refusal(reason, check, current, float(limit or 0), retry)
