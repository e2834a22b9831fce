"""What a client dialect costs against plain chat: gateway CPU per call and latency for the same answer asked
through ``/v1/chat/completions``, ``/v1/responses`` and (once served) ``/v1/messages``, plain and streamed.

The gateway (CLI, one worker) serves a mock model (no upstream I/O), so the difference between rows is the
dialect's translation of the request, the answer and each chunk. CPU is the gateway process tree's
user+system time over the run (/proc), divided by the requests.

    .venv/bin/python bench/dialects.py                  # 2,000 calls per run, 1 and 16 at once
    .venv/bin/python bench/dialects.py --calls 500 --concurrency 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.procstat import cpu_seconds, descendants  # noqa: E402
from tests.support.process import gateway_process  # noqa: E402
from tests.support.upstream import closed_port  # noqa: E402

TEXT = "Hello, how are you today?"
CONFIG = """model_list:
  - model_name: m
    litellm_params: {{model: mock/m}}
litellm_settings:
  success_callback: []
  failure_callback: []
spangate_settings: {{data_dir: {data}, durable_delivery: false}}
"""
# label -> (path, body): the same question in each dialect
SCENARIOS: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": TEXT}]}),
    "responses": ("/v1/responses", {"model": "m", "input": TEXT}),
    "messages": ("/v1/messages", {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": TEXT}]}),
}


def measure(client: httpx.Client, url: str, body: dict[str, Any], pids: list[int], calls: int,
            concurrency: int) -> tuple[float, list[float], float]:
    def call(_: int) -> float:
        started = time.perf_counter()
        reply = client.post(url, json=body)
        assert reply.status_code == 200, reply.text[:200]
        return time.perf_counter() - started

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(call, range(min(200, calls))))  # warm-up: connections, code paths
        cpu0, wall0 = cpu_seconds(pids), time.perf_counter()
        latencies = sorted(pool.map(call, range(calls)))
        return time.perf_counter() - wall0, latencies, cpu_seconds(pids) - cpu0


def run(calls: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(CONFIG.format(data=Path(tmp) / "data"))
        port = closed_port()
        with open(Path(tmp) / "gateway.log", "wb") as log, \
                gateway_process(config, port, output=log, debug=False) as proc, \
                httpx.Client(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:
            pids = [proc.pid, *descendants(proc.pid)]
            for label, (path, body) in SCENARIOS.items():
                for stream in (False, True):
                    url = f"http://127.0.0.1:{port}{path}"
                    if client.post(url, json=body).status_code == 404:
                        print(f"{label:<12} not served by this gateway", flush=True)
                        break
                    wall, latencies, cpu = measure(client, url, {**body, "stream": stream}, pids, calls,
                                                   concurrency)
                    report(f"{label}{' stream' if stream else ''}", concurrency, calls, wall, latencies, cpu)


def report(label: str, concurrency: int, calls: int, wall: float, latencies: list[float], cpu: float) -> None:
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(f"{label:<18} c={concurrency:<3} {calls / wall:8.0f} req/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   "
          f"gateway CPU {cpu / calls * 1e6:7.0f} µs/req", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    for concurrency in args.concurrency:
        run(args.calls, concurrency)


if __name__ == "__main__":
    main()
