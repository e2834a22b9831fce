"""What one Langfuse export request costs, in-process: per step, and through the real delivery path.

    .venv/bin/python bench/export_cost.py steps                  # encode / gzip / POST, 1 span each
    .venv/bin/python bench/export_cost.py delivery --dests 1000  # DeliveryManager + spool, 1 span per dest
    .venv/bin/python bench/export_cost.py delivery --dests 10 --spans 1000 --profile

The Langfuse stand-in of ``teams_scale.py`` runs as a child process (pinned with ``--sink-pin``);
this process is pinned with ``--pin``. ``steps`` times each part of one export on one thread
(``time.thread_time``) over ``--dests`` exporters with their own credentials on the shared,
policy-checked client, as the gateway builds them. ``delivery`` opens ``--dests`` destinations on a
``DeliveryManager`` with a durable spool, submits ``--spans`` gateway-like spans round-robin at
``--rate`` per second, waits until all are delivered and reports the process CPU per span and the
sink's request count; ``--profile`` runs every delivery thread under cProfile and prints the merged
top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from procstat import cpu_seconds, rss_mb  # noqa: E402
from teams_scale import Sink, basic, team_keys  # noqa: E402


def gateway_span(i: int):  # a span shaped like the gateway's chat span (same attribute names and count)
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

    from contracts import semconv as sc

    attrs = {sc.OPERATION_NAME: sc.OP_CHAT, sc.PROVIDER_NAME: sc.PROVIDER_OPENAI, sc.REQUEST_MODEL: "gpt-4",
             sc.RESPONSE_MODEL: "gpt-4-0613", sc.RESPONSE_FINISH_REASONS: ("stop",), sc.USAGE_INPUT_TOKENS: 12,
             sc.USAGE_OUTPUT_TOKENS: 30, sc.USAGE_COST: 0.0000198, "spangate.team.id": f"team-{i % 1000}",
             "spangate.key.alias": "bench", "http.response.status_code": 200, "server.address": "127.0.0.1"}
    now = time.time_ns()
    return ReadableSpan(name="chat gpt-4", context=SpanContext(0x1234 + i, 0x99 + i, False, TraceFlags(1)),
                        resource=Resource({"service.name": "spangate", "service.version": "0.1.0"}),
                        attributes=attrs, kind=SpanKind.SERVER, start_time=now - 1_000_000, end_time=now,
                        instrumentation_scope=InstrumentationScope("spangate", "0.1.0"))


def exporters(n: int, url: str, client: httpx.Client):
    from exporters.langfuse.config import LangfuseConfig
    from exporters.langfuse.exporter import LangfuseSpanExporter

    out = []
    for i in range(n):
        public, secret = team_keys(i)
        config = LangfuseConfig.from_vars({"langfuse_public_key": public, "langfuse_secret_key": secret,
                                           "langfuse_host": url})
        out.append(LangfuseSpanExporter(config, client))
    return out


def api_client() -> httpx.Client:
    from exporters.transport.urlpolicy import CallbackPolicy, guarded_client

    return guarded_client(CallbackPolicy(), timeout=10.0, trust_env=False, limits=httpx.Limits(max_connections=64))


def steps(args: argparse.Namespace, sink: Sink) -> None:
    from exporters.langfuse.encode import encode_langfuse

    client = api_client()
    targets = exporters(args.dests, sink.url, client)
    spans = [gateway_span(i) for i in range(args.spans)]
    for e in targets[:20]:  # warm the pool
        e.export([spans[0]])
    clock = time.thread_time
    t0 = clock()
    bodies = [encode_langfuse([s]) for s in spans]
    t1 = clock()
    zipped = [gzip.compress(b, compresslevel=1) for b in bodies]
    t2 = clock()
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip",
               "x-langfuse-ingestion-version": "4"}
    url = sink.url + "/api/public/otel/v1/traces"
    for i, body in enumerate(zipped):
        client.post(url, content=body, headers={**headers, "Authorization": basic(*team_keys(i % args.dests))})
    t3 = clock()
    profile = cProfile.Profile() if args.profile else None
    if profile:
        profile.enable()
    for i, s in enumerate(spans):
        targets[i % args.dests].export([s])
    if profile:
        profile.disable()
    t4 = clock()
    n = len(spans)
    print(f"per span (ms, thread CPU, {n} spans over {args.dests} exporters):")
    print(f"  encode_langfuse 1 span  {1000 * (t1 - t0) / n:.3f}  ({len(bodies[0])} B)")
    print(f"  gzip level 1            {1000 * (t2 - t1) / n:.3f}  ({len(zipped[0])} B)")
    print(f"  client.post (guarded)   {1000 * (t3 - t2) / n:.3f}")
    print(f"  exporter.export([span]) {1000 * (t4 - t3) / n:.3f}  (all of it{', profiled' if profile else ''})")
    if profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)
    client.close()


def delivery(args: argparse.Namespace, sink: Sink) -> None:
    from processors.delivery.config import DeliveryConfig
    from processors.delivery.manager import DeliveryManager

    profiles: list[cProfile.Profile] = []
    if args.profile:
        original = threading.Thread.run

        def profiled(self: threading.Thread) -> None:
            if not self.name.startswith("spangate-"):
                return original(self)
            profile = cProfile.Profile(time.thread_time)  # CPU, not wall: waits are not costs
            profiles.append(profile)
            profile.enable()
            try:
                original(self)
            finally:
                profile.disable()

        threading.Thread.run = profiled  # type: ignore[method-assign]
    workdir = Path(tempfile.mkdtemp(prefix="spangate-export-cost-"))
    manager = DeliveryManager(DeliveryConfig(spool_dir=workdir, **args.config))
    manager.start()
    client = api_client()
    targets = exporters(args.dests, sink.url, client)
    if args.noop:  # the delivery path alone: an exporter that accepts at once
        from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

        class Noop(SpanExporter):
            def export(self, spans):  # type: ignore[no-untyped-def]
                return SpanExportResult.SUCCESS

        targets = [Noop() for _ in targets]
    dests = [manager.open(f"lf-{i}", team=f"t{i}", name="langfuse", factory=lambda e=e: e)
             for i, e in enumerate(targets)]
    if args.warm:  # one span per destination first, delivered before measuring: each exporter's
        # one-time work (its request head, its first connection) out of the figures
        for i, dest in enumerate(dests):
            dest.submit(gateway_span(i))
        manager.force_flush(60)
    before = sink.stats()["other"].get("export_requests", 0)
    delivered0 = sum(d.delivered for d in dests)
    threads0, rss0 = thread_cpu(), rss_mb([os.getpid()])
    cpu0, start = cpu_seconds([os.getpid()]), time.monotonic()
    for i in range(args.spans):  # paced like calls arriving at --rate per second; ends now (lag)
        dests[i % args.dests].submit(gateway_span(i))
        wait = start + (i + 1) / args.rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
    submitted = time.monotonic()
    while sum(d.delivered for d in dests) - delivered0 < args.spans and time.monotonic() - submitted < 60:
        time.sleep(0.01)
    cpu = cpu_seconds([os.getpid()]) - cpu0
    by_thread, rss1 = thread_cpu(), rss_mb([os.getpid()])
    stats = sink.stats()
    delivered = sum(d.delivered for d in dests) - delivered0
    requests = stats["other"].get("export_requests", 0) - before
    manager.shutdown(5)
    client.close()
    print(f"{args.spans} spans to {args.dests} destinations at {args.rate}/s: delivered {delivered}, "
          f"{requests} requests ({1000 * requests / max(delivered, 1):.0f} per 1,000 spans), "
          f"process CPU {1000 * cpu / args.spans:.3f} ms per span, all delivered "
          f"{time.monotonic() - submitted:.2f} s after the last submit, lag {stats.get('lag_ms')}")
    print(f"  RSS {rss0:.1f} MB after opening the destinations, {rss1:.1f} MB after delivery")
    print("  CPU by thread name, ms per span:", {name: round(1000 * (sec - threads0.get(name, 0.0)) / args.spans, 3)
                                                for name, sec in by_thread.items()})
    if profiles:
        merged = pstats.Stats(profiles[0])
        for p in profiles[1:]:
            merged.add(p)
        merged.sort_stats("tottime").print_stats(args.top)
        merged.sort_stats("cumulative").print_stats(args.top)


def thread_cpu() -> dict[str, float]:
    """utime + stime per thread name (Linux): which thread the cost is on."""
    ticks = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name.split(" ")[0] for t in threading.enumerate()}
    out: dict[str, float] = {}
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            name = names.get(int(task.name), "other")
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=("steps", "delivery"))
    parser.add_argument("--dests", type=int, default=1000)
    parser.add_argument("--spans", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=500.0, help="spans submitted per second (delivery)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--warm", action="store_true",
                        help="delivery: one span per destination delivered before measuring (steady state)")
    parser.add_argument("--noop", action="store_true", help="delivery: exporters that accept without sending")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--pin", type=int, default=None)
    parser.add_argument("--sink-pin", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a DeliveryConfig field (float), e.g. --set batch_delay=0.2")
    args = parser.parse_args()
    args.config = {k: (float(v) if "." in v else int(v)) for k, v in (item.split("=", 1) for item in args.set)}
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})
    sink = Sink()
    if args.sink_pin is not None:
        subprocess.run(["taskset", "-pc", str(args.sink_pin), str(sink.proc.pid)], check=True, capture_output=True)
    try:
        (steps if args.mode == "steps" else delivery)(args, sink)
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
