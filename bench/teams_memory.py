"""What each team costs in the gateway's memory: tracemalloc snapshots between N and 2N teams.

    .venv/bin/python bench/teams_memory.py --teams 150            # 150 then 300 teams
    .venv/bin/python bench/teams_memory.py --teams 150 --top 40 --frames 8

The gateway runs as in ``teams_scale.py`` (one worker, SQLite store, the loopback Langfuse stand-in)
but under tracemalloc; it writes a snapshot when it gets SIGUSR1. Four points are taken: N teams
configured (C1), one call per team delivered (D1), 2N configured (C2), 2N delivered (D2). The report
gives the RSS at each point and, per allocation site (grouped by the deepest frame in the repo), the
bytes per team of the second N teams: configuring them (C2 - D1) and delivering their first call
(D2 - C2). Figures go to stdout; tracemalloc itself inflates RSS, so compare RSS with teams_scale.py.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
from procstat import free_port, rss_mb, stop_process, wait_for_http
from teams_scale import CONFIG, MASTER_KEY, SALT_KEY, Sink, create_team, gather_limited

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent


def run_gateway(argv: list[str], frames: int) -> None:
    """The gateway process: tracemalloc on, SIGUSR1 writes a snapshot to $SPANGATE_SNAPSHOT."""
    tracemalloc.start(frames)

    def dump(_signum: int, _frame: Any) -> None:
        gc.collect()
        path = Path(os.environ["SPANGATE_SNAPSHOT"])
        current, peak = tracemalloc.get_traced_memory()  # peak: since the previous snapshot
        Path(str(path) + ".traced").write_text(f"{current} {peak}")
        snapshot = tracemalloc.take_snapshot()
        snapshot.dump(str(path) + ".tmp")
        del snapshot
        gc.collect()
        tracemalloc.reset_peak()  # after: the snapshot itself (~1.5x the traced memory) is no peak of ours
        os.replace(str(path) + ".tmp", path)

    signal.signal(signal.SIGUSR1, dump)
    from app.cli import main

    sys.exit(main(argv))


class Gateway:
    def __init__(self, workdir: Path, frames: int) -> None:
        config = workdir / "gateway.yaml"
        config.write_text(CONFIG.format(master_key=MASTER_KEY, data_dir=workdir / "data", extra_settings=""))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.snapshot_path = workdir / "snapshot"
        self.traced: list[str] = []
        self.log = (workdir / "gateway.log").open("w")
        env = {**os.environ, "PYTHONPATH": str(REPO), "SPANGATE_SALT_KEY": SALT_KEY,
               "SPANGATE_SNAPSHOT": str(self.snapshot_path)}
        argv = [sys.executable, __file__, "--gateway", "--frames", str(frames), "--", "--config", str(config),
                "--host", "127.0.0.1", "--port", self.url.rsplit(":", 1)[1], "--num_workers", "1"]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        if not wait_for_http(self.url + "/health/liveliness", timeout=120, alive=lambda: self.proc.poll() is None):
            self.stop()
            sys.exit(f"gateway did not start; see {self.log.name}")

    def snapshot(self) -> tuple[float, tracemalloc.Snapshot]:
        """RSS (MB) and the snapshot; ``self.traced`` gets the traced MB now and at the peak since the last."""
        self.snapshot_path.unlink(missing_ok=True)
        os.kill(self.proc.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 300
        while not self.snapshot_path.exists():
            if time.monotonic() > deadline:
                sys.exit("no snapshot")
            time.sleep(0.2)
        current, peak = (int(v) / 2**20 for v in Path(str(self.snapshot_path) + ".traced").read_text().split())
        self.traced.append(f"{current:.1f} (peak {peak:.1f})")
        return rss_mb([self.proc.pid]), tracemalloc.Snapshot.load(str(self.snapshot_path))

    def stop(self) -> None:
        stop_process(self.proc, timeout=30)
        self.log.close()


async def configure(gateway: Gateway, sink: Sink, first: int, count: int) -> list[str]:
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=120, trust_env=False) as admin:
        made = await gather_limited(8, [create_team(admin, sink, i) for i in range(first, first + count)])
    return [key for _team_id, key in made]


async def call_each(gateway: Gateway, keys: list[str]) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=120, trust_env=False) as client:

        async def call(key: str) -> None:
            reply = await client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                                      json={"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}],
                                            "metadata": {"generation_name": "bench", "session_id": key[-6:]}})
            reply.raise_for_status()

        await gather_limited(16, [call(k) for k in keys])


def wait_delivered(sink: Sink, expected: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while True:
        received = sum(sum(c.values()) for c in sink.stats()["counts"].values())
        if received >= expected or time.monotonic() > deadline:
            return received
        time.sleep(0.3)


def owner(trace: tracemalloc.Traceback, depth: int) -> str:
    """The innermost ``depth`` frames that are the repo's own code (else the innermost frame)."""
    ours = [f for f in trace if f.filename.startswith(str(REPO)) and "/bench/" not in f.filename]
    frames = list(reversed(ours))[:depth] if ours else [trace[-1]]  # snapshot frames: outermost first
    return " <- ".join(f"{Path(f.filename).relative_to(REPO) if f.filename.startswith(str(REPO)) else f.filename}"
                       f":{f.lineno}" for f in frames)


def per_team(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, teams: int, depth: int,
             top: int) -> list[str]:
    sizes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for stat in after.compare_to(before, "traceback"):
        key = owner(stat.traceback, depth)
        sizes[key][0] += stat.size_diff
        sizes[key][1] += stat.count_diff
    total = sum(s for s, _ in sizes.values())
    lines = [f"  total {total / teams / 1024:8.2f} KB/team"]
    for key, (size, count) in sorted(sizes.items(), key=lambda kv: -abs(kv[1][0]))[:top]:
        lines.append(f"  {size / teams / 1024:8.2f} KB/team {count / teams:7.1f} blocks/team  {key}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gateway", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--teams", type=int, default=150)
    parser.add_argument("--frames", type=int, default=12, help="traceback depth kept by tracemalloc")
    parser.add_argument("--depth", type=int, default=2, help="repo frames per allocation site in the report")
    parser.add_argument("--top", type=int, default=30)
    args, rest = parser.parse_known_args()
    if args.gateway:
        run_gateway([a for a in rest if a != "--"], args.frames)
        return
    n = args.teams
    sink = Sink()
    workdir = Path(tempfile.mkdtemp(prefix="spangate-teams-memory-"))
    try:
        gateway = Gateway(workdir, args.frames)
    except SystemExit:
        sink.stop()  # a gateway that did not start must not leave the stand-in running
        raise
    try:
        asyncio.run(call_each(gateway, []))
        keys1 = asyncio.run(configure(gateway, sink, 0, n))
        time.sleep(1.5)
        rss_c1, _c1 = gateway.snapshot()
        asyncio.run(call_each(gateway, keys1))
        got = wait_delivered(sink, n)
        time.sleep(1.5)
        rss_d1, d1 = gateway.snapshot()
        keys2 = asyncio.run(configure(gateway, sink, n, n))
        time.sleep(1.5)
        rss_c2, c2 = gateway.snapshot()
        asyncio.run(call_each(gateway, keys2))
        got = wait_delivered(sink, 2 * n)
        time.sleep(1.5)
        rss_d2, d2 = gateway.snapshot()
    finally:
        gateway.stop()
        sink.stop()
    print(f"RSS (MB, under tracemalloc): C1 {rss_c1:.1f}  D1 {rss_d1:.1f}  C2 {rss_c2:.1f}  D2 {rss_d2:.1f}; "
          f"spans delivered {got}/{2 * n}")
    print("traced MB at C1, D1, C2, D2 (peak since the previous point): " + ", ".join(gateway.traced))
    print(f"RSS per team, second {n} teams: {(rss_d2 - rss_d1) * 1024 / n:.1f} KB")
    print(f"configuring {n} more teams (C2 - D1):")
    print("\n".join(per_team(d1, c2, n, args.depth, args.top)))
    print("their first call delivered (D2 - C2):")
    print("\n".join(per_team(c2, d2, n, args.depth, args.top)))
    print("both (D2 - D1):")
    print("\n".join(per_team(d1, d2, n, args.depth, args.top)))


if __name__ == "__main__":
    main()
