"""The gateway against an upstream behind nginx (issue 8): a real reverse proxy's framing, end to end.

    .venv/bin/python bench/nginx_upstream.py [--calls 200] [--concurrency 16]

nginx (Debian's package: ``apt-get install -y nginx-light``) proxies to ``fake_upstream.py`` with
upstream keep-alive (``keepalive``, ``proxy_http_version 1.1``, an empty ``Connection`` header) and
``proxy_buffering off``, so SSE is relayed chunk by chunk as nginx re-chunks it. Under ``/chunked/`` a
no-op ``sub_filter`` makes the length unknown, so a non-streaming JSON answer reaches the gateway
chunked too. The gateway (``spangate`` CLI, one worker, the ``file`` destination) has one
deployment through each path. The openai client runs ``--calls`` chat, chunked-JSON chat and
streaming chat calls, ``--concurrency`` at a time; every answer is checked (text, a fresh id), then
the gateway is stopped (it flushes) and its spans are read: one OK span per call, carrying the id
that caller got. nginx's stub_status shows how many gateway connections carried those calls.
Exits 1 on any mismatch. Not part of the test suite.
"""

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fake_upstream import CONTENT_WORDS
from procstat import free_port, stop_process, wait_for_http

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))
from contracts import semconv as sc  # noqa: E402  (the repo root is only importable after the line above)

EXPECTED_TEXT = "".join(CONTENT_WORDS)
MESSAGES = [{"role": "user", "content": "Say hello to the benchmark in one short sentence."}]

NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream fake {{
        server 127.0.0.1:{upstream};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 100000;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        chunked_transfer_encoding on;
        location / {{
            proxy_pass http://fake;
        }}
        location /chunked/ {{
            proxy_pass http://fake/;
            # A body filter that changes nothing still makes the length unknown: nginx answers chunked.
            sub_filter_types application/json;
            sub_filter "never-in-a-body" "";
        }}
        location = /nginx_status {{
            stub_status;
        }}
    }}
}}
"""

GATEWAY_CONFIG = """\
model_list:
  - model_name: via-nginx
    litellm_params: {{model: openai/bench-chat, api_base: "http://127.0.0.1:{nginx}/v1", api_key: sk-bench}}
  - model_name: via-nginx-chunked
    litellm_params: {{model: openai/bench-chat, api_base: "http://127.0.0.1:{nginx}/chunked/v1", api_key: sk-bench}}
litellm_settings:
  success_callback: ["file"]
  failure_callback: ["file"]
spangate_settings:
  data_dir: "{data_dir}"
  durable_delivery: false
"""


def gateway_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


class Processes:
    """The fake upstream, nginx and the gateway, started in that order and stopped in reverse."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[Any]] = []

    def start_upstream(self) -> int:
        proc = self._spawn([sys.executable, str(BENCH_DIR / "fake_upstream.py"), "--port", "0"],
                           stdout=subprocess.PIPE)
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("READY "):
            sys.exit(f"fake upstream did not start: {line!r}")
        return int(json.loads(line.removeprefix("READY "))["port"])

    def start_nginx(self, nginx: str, upstream: int) -> int:
        port = free_port()
        conf = self.tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=self.tmp, upstream=upstream, port=port))
        proc = self._spawn([nginx, "-c", str(conf), "-p", str(self.tmp), "-e", str(self.tmp / "stderr.log")])
        if not wait_for_http(f"http://127.0.0.1:{port}/nginx_status", 20, lambda: proc.poll() is None):
            sys.exit(f"nginx did not start: {(self.tmp / 'stderr.log').read_text()[-1000:]}")
        return port

    def start_gateway(self, nginx_port: int) -> str:
        data_dir = self.tmp / "gateway-data"
        data_dir.mkdir()
        config = self.tmp / "gateway.yaml"
        config.write_text(GATEWAY_CONFIG.format(nginx=nginx_port, data_dir=data_dir))
        port = free_port()
        log = (self.tmp / "gateway.log").open("w")
        proc = self._spawn([sys.executable, "-m", "app.cli", "--config", str(config), "--port", str(port)],
                           stdout=log, stderr=subprocess.STDOUT, env=gateway_env())
        url = f"http://127.0.0.1:{port}"
        if not wait_for_http(f"{url}/health/liveliness", 60, lambda: proc.poll() is None):
            sys.exit(f"gateway did not start: {(self.tmp / 'gateway.log').read_text()[-2000:]}")
        return url

    def stop_last(self) -> None:
        stop_process(self.procs.pop(), timeout=15)

    def stop_all(self) -> None:
        while self.procs:
            self.stop_last()

    def _spawn(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        proc = subprocess.Popen(argv, text=True, **kwargs)
        self.procs.append(proc)
        return proc


# --- the calls -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    reply_id: str | None  # the id the caller got, None when the call failed
    error: str | None
    latency: float


async def one_call(client: Any, kind: str) -> str:
    """One call of ``kind``, its answer checked; returns the response id the caller got."""
    if kind == "stream":
        stream = await client.chat.completions.create(model="via-nginx", messages=MESSAGES, stream=True,
                                                      stream_options={"include_usage": True})
        chunks = [c async for c in stream]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        ids, usage = {c.id for c in chunks}, chunks[-1].usage
        assert len(ids) == 1 and usage is not None, (ids, usage)
        reply_id = ids.pop()
    else:
        model = "via-nginx-chunked" if kind == "chat-chunked" else "via-nginx"
        reply = await client.chat.completions.create(model=model, messages=MESSAGES)
        text, reply_id = reply.choices[0].message.content, reply.id
    assert text == EXPECTED_TEXT, f"{kind}: {text!r}"
    return reply_id


async def run_calls(base_url: str, calls: int, concurrency: int) -> dict[str, list[Call]]:
    from openai import AsyncOpenAI

    gate = asyncio.Semaphore(concurrency)

    async def limited(client: Any, kind: str) -> Call:
        async with gate:
            start = time.perf_counter()
            try:
                reply_id = await one_call(client, kind)
            except Exception as exc:  # counted and shown in the summary; the run goes on
                return Call(None, f"{type(exc).__name__}: {exc}"[:200], time.perf_counter() - start)
            return Call(reply_id, None, time.perf_counter() - start)

    results: dict[str, list[Call]] = {}
    async with AsyncOpenAI(base_url=base_url + "/v1", api_key="anything", max_retries=0, timeout=30) as client:
        for kind in ("chat", "chat-chunked", "stream"):
            results[kind] = await asyncio.gather(*(limited(client, kind) for _ in range(calls)))
    return results


def check(spans_path: Path, results: dict[str, list[Call]]) -> list[str]:
    """Problems found: every call answered right, with one OK span carrying the id its caller got."""
    spans = [json.loads(line) for line in spans_path.read_text().splitlines() if line.strip()]
    by_id = {s["attributes"].get(sc.RESPONSE_ID): s for s in spans}
    ids = [call.reply_id for kind in results.values() for call in kind if call.reply_id is not None]
    problems = [f"{kind}: {len(errors)} calls failed, e.g. {errors[0]}" for kind, rows in results.items()
                if (errors := [call.error for call in rows if call.error])]
    if len(set(ids)) != len(ids):
        problems.append(f"{len(ids) - len(set(ids))} callers got an id another caller got too")
    if len(spans) != sum(len(rows) for rows in results.values()):
        problems.append(f"{len(spans)} spans for {sum(len(rows) for rows in results.values())} calls")
    missing = [rid for rid in ids if rid not in by_id]
    if missing:
        problems.append(f"{len(missing)} calls have no span with their id, e.g. {missing[:3]}")
    not_ok = [s["status"] for s in spans if s["status"]["code"] != "OK"]
    if not_ok:
        problems.append(f"{len(not_ok)} spans not OK, e.g. {not_ok[:3]}")
    streams = [by_id[call.reply_id] for call in results["stream"] if call.reply_id in by_id]
    unfinished = [s for s in streams if s["attributes"].get(sc.STREAM_OUTCOME) != sc.STREAM_COMPLETED]
    if unfinished:
        problems.append(f"{len(unfinished)} stream spans not completed")
    return problems


def nginx_status(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/nginx_status", timeout=5) as response:
        return " ".join(response.read().decode().split())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=200, help="calls of each kind (chat, chat-chunked, stream)")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        sys.exit("nginx is not installed: apt-get install -y nginx-light")
    with tempfile.TemporaryDirectory(prefix="spangate-nginx-") as tmp:
        procs = Processes(Path(tmp))
        try:
            nginx_port = procs.start_nginx(nginx, procs.start_upstream())
            base_url = procs.start_gateway(nginx_port)
            started = time.perf_counter()
            results = asyncio.run(run_calls(base_url, args.calls, args.concurrency))
            wall = time.perf_counter() - started
            status = nginx_status(nginx_port)
            procs.stop_last()  # the gateway: a graceful stop flushes every span to the file
            problems = check(Path(tmp) / "gateway-data" / "spans.jsonl", results)
        finally:
            procs.stop_all()
    total = sum(len(r) for r in results.values())
    print(f"nginx reverse proxy, {args.calls} calls per kind, concurrency {args.concurrency}: "
          f"{total} calls in {wall:.2f} s ({total / wall:.0f} calls/s)")
    for kind, rows in results.items():
        latencies = sorted(call.latency for call in rows)
        right = sum(call.error is None for call in rows)
        print(f"  {kind:13s} {right}/{len(rows)} answers right, p50 {statistics.median(latencies) * 1000:.1f} ms, "
              f"max {latencies[-1] * 1000:.1f} ms")
    print(f"  nginx stub_status (gateway -> nginx connections vs requests): {status}")
    print("  spans: " + ("one OK span per call, each with its caller's id" if not problems else "; ".join(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
