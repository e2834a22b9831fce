"""Measures the store's two figures that matter for running several gateways on one database.

1. Propagation: time from a write on instance A to ``on_change`` on instance B's StoreWatcher.
2. Snapshot cost with 1,000 teams x 1 callback + 10,000 keys (what every watcher reloads).

Run:  .venv/bin/python -m tests.app.store.bench_store [--pg postgresql://postgres@127.0.0.1/test]
Not collected by pytest (the file name does not start with test_).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from app.store import Store, StoreSnapshot, StoreWatcher
from app.store.schema import keys
from app.teams.secrets import hash_key, key_display_prefix, new_virtual_key


async def propagation(url: str, schema: str | None, rounds: int, interval: float) -> list[float]:
    a = await Store.open(url, schema=schema)
    b = await Store.open(url, schema=schema)
    arrived: asyncio.Queue[tuple[float, StoreSnapshot]] = asyncio.Queue()
    watcher = StoreWatcher(b, lambda snap: arrived.put_nowait((time.perf_counter(), snap)), interval=interval)
    await watcher.start()
    await arrived.get()
    latencies = []
    try:
        for n in range(rounds):
            await asyncio.sleep(interval * (n % 7) / 7)  # spread writes over the poll phase
            written = time.perf_counter()
            await a.set_callback("team-0", "langfuse", "success", f"v1.{n}", ["langfuse_secret_key"], {})
            while True:
                seen_at, snap = await arrived.get()
                if snap.callbacks["team-0"][0].vars_ciphertext == f"v1.{n}":
                    break
            latencies.append(seen_at - written)
    finally:
        await watcher.stop()
        await a.close()
        await b.close()
    return latencies


async def populate(store: Store, teams: int, keys_count: int) -> None:
    for n in range(teams):
        await store.create_team(f"team-{n}", f"Team {n}", ["gpt-4o"], {"cost_center": n})
        await store.set_callback(
            f"team-{n}", "langfuse", "success_and_failure", "v1." + "x" * 120, ["langfuse_secret_key"],
            {"langfuse_public_key": f"pk-lf-{n}", "langfuse_host": "https://cloud.langfuse.com"},
        )  # fmt: skip
    now = datetime.now(UTC)
    rows = []
    for n in range(keys_count):
        plaintext = new_virtual_key()
        rows.append(
            {
                "token_hash": hash_key(plaintext),
                "key_prefix": key_display_prefix(plaintext),
                "key_alias": f"key-{n}",
                "team_id": f"team-{n % teams}",
                "models": [],
                "metadata": {},
                "expires_at": None,
                "created_at": now,
            }
        )
    # Bulk insert: the per-key API path is not what is measured here.
    async with store._engines.write.begin() as conn:
        await conn.execute(keys.insert(), rows)


async def snapshot_cost(url: str, schema: str | None, runs: int) -> dict[str, float]:
    store = await Store.open(url, schema=schema)
    try:
        await populate(store, 1000, 10_000)
        version_times, snapshot_times = [], []
        cpu_times = []
        for _ in range(runs):
            start = time.perf_counter()
            await store.version()
            version_times.append(time.perf_counter() - start)
            start, cpu = time.perf_counter(), time.process_time()
            snap = await store.snapshot()
            snapshot_times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu)
        assert len(snap.teams) == 1000 and len(snap.keys) == 10_000
        tracemalloc.start()
        held = await store.snapshot()
        size, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del held
        start = time.perf_counter()
        for _ in range(100_000):
            snap.keys.get("missing")
        lookup = (time.perf_counter() - start) / 100_000
    finally:
        await store.close()
    return {
        "version_ms_median": statistics.median(version_times) * 1e3,
        "snapshot_ms_median": statistics.median(snapshot_times) * 1e3,
        "snapshot_ms_max": max(snapshot_times) * 1e3,
        "snapshot_cpu_ms_median": statistics.median(cpu_times) * 1e3,
        "snapshot_mib": size / 2**20,
        "key_lookup_ns": lookup * 1e9,
    }


def describe(latencies: list[float]) -> str:
    ms = sorted(x * 1e3 for x in latencies)
    p95 = ms[int(len(ms) * 0.95) - 1]
    return f"n={len(ms)} min={ms[0]:.0f} median={statistics.median(ms):.0f} p95={p95:.0f} max={ms[-1]:.0f} ms"


async def run_backend(name: str, url: str, schema: str | None, args: argparse.Namespace) -> None:
    seed = await Store.open(url, schema=schema)
    await seed.create_team("team-0", None, [], {})
    await seed.close()
    latencies = await propagation(url, schema, args.rounds, args.interval)
    print(f"[{name}] propagation A->B (interval {args.interval}s): {describe(latencies)}")
    cost_url = url if schema else f"{url}.cost"
    cost_schema = f"{schema}_cost" if schema else None
    costs = await snapshot_cost(cost_url, cost_schema, args.runs)
    print(f"[{name}] 1,000 teams x 1 callback + 10,000 keys: " + ", ".join(f"{k}={v:.3f}" for k, v in costs.items()))
    latencies = await propagation(cost_url, cost_schema, args.rounds, args.interval)
    print(f"[{name}] propagation A->B with those 11,000 rows loaded: {describe(latencies)}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        await run_backend("sqlite", str(Path(tmp) / "bench.db"), None, args)
    schema = f"spangate_bench_{secrets.token_hex(4)}"
    try:
        await run_backend("postgres", args.pg, schema, args)
    finally:
        conn = await asyncpg.connect(args.pg)
        for name in (schema, f"{schema}_cost"):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
