"""Soak of the delivery layer: a steady span rate through a DeliveryManager into loopback sinks
with injected faults, counted by span id.

    .venv/bin/python bench/soak_delivery.py                 # 10 minutes, 100 spans/s
    .venv/bin/python bench/soak_delivery.py --minutes 2 --rate 200 [--memory]

Every span goes to every destination (as a global destination would): healthy sinks, one that
answers 503 for 20 s of every 60 s, one that rate-limits 10% of requests with Retry-After: 1,
one that answers after 3 s, one that rejects batches over 50 spans with 413, and a black hole
that accepts TCP and never answers. At the end it flushes and prints lost and duplicated spans
per destination, delivery lag p50/p99, submit() latency and RSS over time. Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext, SpanKind

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts.failures import ExportFailure
from exporters.transport.answers import post_batch
from exporters.transport.poster import HttpxPoster
from processors.delivery import DeliveryConfig, DeliveryManager
from tests.support.sinks import HttpSink, Received, Reply

RESOURCE = Resource({"service.name": "spangate-soak"})
START = time.monotonic()


class IdsExporter(SpanExporter):
    def __init__(self, url: str, timeout: float) -> None:
        self._client, self._url = httpx.Client(timeout=timeout), f"{url}/ingest"
        self.last_failure: ExportFailure | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        ids = [s.context.span_id for s in spans]
        self.last_failure = post_batch(HttpxPoster(self._client), self._url, lambda: json.dumps({"ids": ids}).encode(),
                                       {"content-type": "application/json"})
        return SpanExportResult.SUCCESS if self.last_failure is None else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._client.close()


class Ledger:
    """Per-id acceptance counts in a bytearray and lags in a float array: the harness's own memory
    stays flat, so the RSS figures are the manager's."""

    def __init__(self, script: Callable[[list[int]], Reply], submitted: array) -> None:
        self.script, self.submitted, self.lock = script, submitted, threading.Lock()
        self.count = bytearray(len(submitted))
        self.lags = array("f")

    def __call__(self, request: Received) -> Reply:
        ids = json.loads(request.body)["ids"]
        reply = self.script(ids)
        if 200 <= reply.status < 300:
            now = time.monotonic()
            with self.lock:
                for i in ids:
                    self.count[i] = min(255, self.count[i] + 1)
                    if self.count[i] == 1:
                        self.lags.append(now - self.submitted[i])
        return reply


def scripts() -> dict[str, Callable[[list[int]], Reply]]:
    tick = Counter()

    def flaky(_ids: list[int]) -> Reply:
        return Reply(503) if (time.monotonic() - START) % 60 < 20 else Reply(200)

    def rate_limited(_ids: list[int]) -> Reply:
        tick["rl"] += 1
        return Reply(429, headers={"Retry-After": "1"}) if tick["rl"] % 10 == 0 else Reply(200)

    return {
        **{f"healthy-{n}": (lambda _ids: Reply(200, delay=0.005)) for n in range(5)},
        "flaky-503": flaky,
        "rate-limited-429": rate_limited,
        "slow-3s": lambda _ids: Reply(200, delay=3.0),
        "too-large-413": lambda ids: Reply(413) if len(ids) > 50 else Reply(200),
    }


def black_hole() -> tuple[str, socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    conns: list[socket.socket] = []
    threading.Thread(target=lambda: [conns.append(server.accept()[0]) for _ in iter(int, 1)], daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}", server


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def run(minutes: float, rate: float, memory: bool) -> None:
    submitted = array("d", [0.0]) * int(minutes * 60 * rate * 1.05 + 10)  # id -> submit time
    ledgers = {name: Ledger(script, submitted) for name, script in scripts().items()}
    sinks = {name: HttpSink(ledger).__enter__() for name, ledger in ledgers.items()}
    hole_url, _hole = black_hole()
    spool = Path(tempfile.mkdtemp(prefix="soak-spool-"))
    manager = DeliveryManager(
        DeliveryConfig(spool_dir=spool, durable=not memory, export_timeout=5.0, max_backoff=5.0, stall_after=1.0)
    )
    manager.start()
    dests = [
        manager.open(f"global/{n}", team=None, name=n, factory=lambda s=s: IdsExporter(s.url, 5.0))
        for n, s in sinks.items()
    ]
    dests.append(
        manager.open("global/black-hole", team=None, name="black-hole", factory=lambda: IdsExporter(hole_url, 2.0))
    )
    total, submit_lat, rss = load(dests, submitted, minutes * 60, rate, lambda: forget_requests(sinks.values()))
    print(f"load done: {total} spans x {len(dests)} destinations; flushing up to 60 s", flush=True)
    settle(manager, 60.0)
    health = {h.name: h for h in manager.health()}
    manager.shutdown(1.0)
    report(total, submit_lat, rss, ledgers, health)


def settle(manager: DeliveryManager, timeout: float) -> None:
    """Wait until every destination but the black hole has nothing queued (it never will)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(h.queued == 0 for h in manager.health() if h.name != "black-hole"):
            return
        time.sleep(0.1)


def forget_requests(sinks) -> None:
    """The sinks keep every request; the ledgers already counted them, so keep RSS honest."""
    for sink in sinks:
        with sink._cond:
            sink.requests.clear()


def load(
    dests, submitted: array, seconds: float, rate: float, tidy: Callable[[], None]
) -> tuple[int, array, list[tuple[float, float]]]:
    latencies = array("f")
    rss: list[tuple[float, float]] = [(0.0, rss_mb())]
    begin = time.monotonic()
    i, next_rss = 0, 10.0
    while (elapsed := time.monotonic() - begin) < seconds and i + 1 < len(submitted):
        i += 1
        span = ReadableSpan(
            "chat soak",
            SpanContext(0x50A4, i, False),
            resource=RESOURCE,
            kind=SpanKind.CLIENT,
            attributes={"i": i, "gen_ai.request.model": "soak"},
            start_time=1,
            end_time=2,
        )
        submitted[i] = time.monotonic()
        for dest in dests:
            t0 = time.perf_counter()
            dest.submit(span)
            latencies.append(time.perf_counter() - t0)
        if elapsed >= next_rss:
            tidy()
            rss.append((elapsed, rss_mb()))
            print(f"t={elapsed:6.0f}s submitted={i} rss={rss[-1][1]:.1f} MiB", flush=True)
            next_rss += max(10.0, seconds / 20)
        time.sleep(max(0.0, begin + i / rate - time.monotonic()))
    rss.append((time.monotonic() - begin, rss_mb()))
    return i, latencies, rss


def report(total: int, submit_lat, rss, ledgers, health) -> None:
    print(
        f"\n{'destination':18} {'delivered':>9} {'lost':>6} {'dup':>5} {'queued':>7} {'dropped':>8} "
        f"{'lag p50':>8} {'lag p99':>8}"
    )
    for name, ledger in ledgers.items():
        h = health[name]
        got = sum(1 for i in range(1, total + 1) if ledger.count[i])
        lost = total - got - h.queued - sum(h.dropped.values())
        dup = sum(max(0, ledger.count[i] - 1) for i in range(1, total + 1))
        lags = list(ledger.lags)
        print(
            f"{name:18} {got:9} {lost:6} {dup:5} {h.queued:7} {sum(h.dropped.values()):8} "
            f"{pct(lags, 0.5):8.3f} {pct(lags, 0.99):8.3f}"
        )
    hole = health["black-hole"]
    print(f"{'black-hole':18} {hole.delivered:9} {'-':>6} {'-':>5} {hole.queued:7} {sum(hole.dropped.values()):8}")
    print(
        f"\nsubmit() latency: p50 {pct(submit_lat, 0.5) * 1e6:.1f} us, p99 {pct(submit_lat, 0.99) * 1e6:.1f} us, "
        f"max {max(submit_lat) * 1e3:.2f} ms"
    )
    print("RSS MiB over time: " + ", ".join(f"{t:.0f}s={m:.1f}" for t, m in rss))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=100.0, help="spans per second (each to every destination)")
    parser.add_argument("--memory", action="store_true", help="memory-only mode instead of the spool")
    args = parser.parse_args()
    run(args.minutes, args.rate, args.memory)


if __name__ == "__main__":
    main()
