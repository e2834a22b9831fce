"""What the Redis limits backend costs the gateway: CPU per admission + settlement, sequential, one process.

A key and its team, each with a budget, rpm, tpm and a parallel limit (the most a call can carry), against
the Redis on 127.0.0.1:6379 under a prefix of its own (deleted after). CPU is ``time.process_time`` of
this process (the client side only; Redis's own time is on its process), divided by the calls.
The client is app/limits/resp.py; with redis-py it was ~200-250 us per call (issue 24 asks for <= 100).

    .venv/bin/python bench/limits_redis.py                # 2,000 calls, uvloop
    .venv/bin/python bench/limits_redis.py --profile      # also cProfile's top functions
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import secrets
import sys
import time
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from app.calls.limits import BudgetDuration, Scope, ScopeLimits  # noqa: E402
from app.limits.model import Check  # noqa: E402
from app.limits.redis_backend import RedisBackend  # noqa: E402
from app.store import SpendRow  # noqa: E402
from tests.support.redis_server import SHARED_URL, delete_prefixed  # noqa: E402


class NoSpend:
    async def period_spend(self, counters: object) -> dict[tuple[str, int], int]:
        return {}


def checks() -> tuple[Check, ...]:
    common = {"max_budget": 1e6, "rpm_limit": 10**9, "tpm_limit": 10**12, "max_parallel_requests": 10**6}
    key = ScopeLimits(Scope.KEY, "k" * 64, "key", budget_duration=BudgetDuration.parse("30d"), **common)
    team = ScopeLimits(Scope.TEAM, "team", "team", **common)
    now = time.time()
    from datetime import UTC, datetime
    return tuple(Check(limits, limits.period(datetime.fromtimestamp(now, UTC))[0]) for limits in (key, team))


async def calls(backend: RedisBackend, scopes: tuple[Check, ...], count: int, tag: str) -> None:
    from datetime import UTC, datetime
    now = datetime.now(UTC)
    for i in range(count):
        request_id = f"{tag}-{i}"
        assert await backend.admit(request_id, scopes, time.time()) is None
        row = SpendRow(request_id, "k" * 64, "team", None, "m", "chat", "success", 10, 5, 15, 1234, now, now,
                       scopes[0].period, 0)
        await backend.settle(request_id, scopes, time.time(), row)


async def main(count: int, profile: bool) -> None:
    prefix = f"spangate-bench-{secrets.token_hex(4)}:"
    backend = RedisBackend(SHARED_URL, store=NoSpend(), key_prefix=prefix)
    scopes = checks()
    try:
        await calls(backend, scopes, 200, "warm")
        wall, cpu = time.perf_counter(), time.process_time()
        await calls(backend, scopes, count, "run")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"{count} admit+settle: {cpu / count * 1e6:.0f} us CPU per call, {wall / count * 1e6:.0f} us wall")
        if profile:
            profiler = cProfile.Profile(time.process_time)  # CPU, not wall: the bench asks what it costs
            profiler.enable()
            await calls(backend, scopes, count, "profiled")
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    finally:
        await delete_prefixed(prefix)
        await backend.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    options = parser.parse_args()
    uvloop.run(main(options.calls, options.profile))
