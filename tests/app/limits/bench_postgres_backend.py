"""Gateway CPU (this process: SQLAlchemy, asyncpg, the backend) per admit + settle of the PostgreSQL
limits backend, against record_spend alone (what a call with limits costs the store anyway).

Run:  PYTHONPATH=. .venv/bin/python -m tests.app.limits.bench_postgres_backend [--calls 2000]
Not collected by pytest (the file name does not start with test_).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

from app.calls.limits import Scope, ScopeLimits
from app.limits.model import Check
from app.limits.postgres_backend import PostgresBackend
from app.store import Store
from tests.app.limits.test_postgres_backend import KEY, spend_row
from tests.support.postgres import fresh_database

CHECKS = {
    "budget only": (Check(ScopeLimits(Scope.KEY, KEY, "k", max_budget=1e6), 0),),
    "key budget+rpm+tpm+parallel, team budget": (
        Check(ScopeLimits(Scope.KEY, KEY, "k", max_budget=1e6, rpm_limit=10**6, tpm_limit=10**9,
                          max_parallel_requests=1000), 0),
        Check(ScopeLimits(Scope.TEAM, "t1", "t", max_budget=1e6), 0)),
}


async def measure(calls: int, step: Callable[[int], Awaitable[None]]) -> tuple[float, float]:
    for i in range(50):  # warm the pool and the prepared statements
        await step(-1 - i)
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(calls):
        await step(i)
    return (time.process_time() - cpu) / calls * 1e6, (time.perf_counter() - wall) / calls * 1e6


async def run(url: str, calls: int) -> None:
    store = await Store.open(url)
    backend = PostgresBackend(store)
    try:
        for name, checks in CHECKS.items():
            async def admit_settle(i: int, checks: tuple[Check, ...] = checks, name: str = name) -> None:
                request_id = f"{name[:6]}-{i}"
                assert await backend.admit(request_id, checks, 0.0) is None
                await backend.settle(request_id, checks, 0.0, spend_row(request_id, 1))

            cpu, wall = await measure(calls, admit_settle)
            print(f"admit+settle, {name}: {cpu:.0f} us CPU, {wall:.0f} us wall per call")

        async def record_only(i: int) -> None:
            await store.record_spend([spend_row(f"rec-{i}", 1)])

        cpu, wall = await measure(calls, record_only)
        print(f"record_spend alone (the baseline): {cpu:.0f} us CPU, {wall:.0f} us wall per call")
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with fresh_database() as url:
        asyncio.run(run(url, args.calls))


if __name__ == "__main__":
    main()
