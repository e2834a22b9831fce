"""What content moderation adds to a call: latency and gateway CPU per request, moderation off and on
against a Content Safety stand-in answering in 0 ms and in 50 ms.

The gateway (CLI, one worker) serves a mock model (no upstream I/O), so the difference between runs
is the moderation hook: one ``text:analyze`` call for the input and one for the answer. The
stand-in runs in its own process (an asyncio server, answers built once) so it never competes with
the load generator for the GIL. CPU is the gateway process tree's user+system time over the run
(/proc), divided by the requests.

    .venv/bin/python bench/moderation.py                 # 2,000 calls per run, 1 and 16 at once
    .venv/bin/python bench/moderation.py --calls 500 --concurrency 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.procstat import cpu_seconds, descendants  # noqa: E402
from tests.support.process import gateway_process  # noqa: E402
from tests.support.upstream import closed_port  # noqa: E402

KEY = "bench-content-safety-key"
ANSWER = json.dumps({"blocklistsMatch": [], "categoriesAnalysis": [
    {"category": c, "severity": 0} for c in ("Hate", "SelfHarm", "Sexual", "Violence")]}).encode()
CONFIG = """model_list:
  - model_name: m
    litellm_params: {{model: mock/m}}
litellm_settings:
  success_callback: []
  failure_callback: []
{moderation}spangate_settings: {{data_dir: {data}, durable_delivery: false}}
"""
MODERATION = """  callbacks: ["azure_content_safety"]
  azure_content_safety_params: {{endpoint: "http://127.0.0.1:{port}", key: {key}}}
"""


# --- the stand-in, run as ``bench/moderation.py --stand-in DELAY`` ----------------------------------


async def _serve_stand_in(delay: float) -> None:
    head = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(ANSWER))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in request.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
                if KEY.encode() not in request:
                    raise ConnectionError("wrong key")
                if delay:
                    await asyncio.sleep(delay)
                writer.write(head + ANSWER)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def start_stand_in(delay: float) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, __file__, "--stand-in", str(delay)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


# --- the load --------------------------------------------------------------------------------------


def run(label: str, moderation_port: int | None, calls: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        moderation = MODERATION.format(port=moderation_port, key=KEY) if moderation_port else ""
        config.write_text(CONFIG.format(moderation=moderation, data=Path(tmp) / "data"))
        port = closed_port()
        limits = httpx.Limits(max_connections=concurrency)
        with open(Path(tmp) / "gateway.log", "wb") as log, \
                gateway_process(config, port, output=log, debug=False) as proc, \
                httpx.Client(timeout=30, limits=limits) as client:
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            body = {"model": "m", "messages": [{"role": "user", "content": "Hello, how are you today?"}]}

            def call(_: int) -> float:
                started = time.perf_counter()
                reply = client.post(url, json=body)
                assert reply.status_code == 200, reply.text[:200]
                return time.perf_counter() - started

            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(call, range(min(200, calls))))  # warm-up: connections, code paths
                pids = [proc.pid, *descendants(proc.pid)]
                cpu0, wall0 = cpu_seconds(pids), time.perf_counter()
                latencies = sorted(pool.map(call, range(calls)))
                wall, cpu = time.perf_counter() - wall0, cpu_seconds(pids) - cpu0
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(f"{label:<28} c={concurrency:<3} {calls / wall:8.0f} req/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   "
          f"gateway CPU {cpu / calls * 1e6:7.0f} µs/req", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--stand-in", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stand_in is not None:
        asyncio.run(_serve_stand_in(args.stand_in))
        return
    for concurrency in args.concurrency:
        run("moderation off", None, args.calls, concurrency)
        for delay in (0.0, 0.05):
            stand_in, port = start_stand_in(delay)
            try:
                run(f"moderation on, service {delay * 1000:.0f} ms", port, args.calls, concurrency)
            finally:
                stand_in.kill()
                stand_in.wait(10)


if __name__ == "__main__":
    main()
