"""1,000 teams, each with its own Langfuse project: threads, RSS and CPU per request of the gateway.

    .venv/bin/python bench/teams_scale.py                # 1000 teams, 5 requests each, concurrency 32
    .venv/bin/python bench/teams_scale.py --teams 200 --per-team 2

Starts a loopback Langfuse stand-in (a child process that gunzips and decodes every OTLP request
and counts spans per (Authorization, spangate.team.id)), and ``spangate`` with a SQLite store and
a master key. Through the admin API it creates the teams, gives each its own langfuse callback
(same sink, a different key pair per team) and a key, then sends chat requests round-robin across
the teams. It reports the gateway's thread count and RSS before the teams exist, after they are
configured and after the load, the CPU it spent per request, and checks that every team's spans
arrived under that team's credentials and nobody else's. Figures go to stdout and
``bench/results/teams-scale-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
from procstat import context_switches, cpu_seconds, descendants, free_port, rss_mb, stop_process, wait_for_http

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
MASTER_KEY = "sk-bench-master-0123456789abcdef"
SALT_KEY = "bench-salt-key-0123456789abcdef0123"
TRACES_PATH = "/api/public/otel/v1/traces"
CONFIG = """\
model_list:
  - model_name: gpt-4
    litellm_params: {{model: mock/gpt-4}}
general_settings:
  master_key: {master_key}
spangate_settings:
  data_dir: {data_dir}
  team_poll_seconds: 0.5
{extra_settings}"""


# --- the Langfuse stand-in (child process) ---------------------------------------------------------


def run_sink() -> None:
    from aiohttp import web
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    counts: dict[str, Counter[str]] = defaultdict(Counter)
    other = Counter()
    lags_ms: list[float] = []  # arrival minus the span's end: what a team waits to see its call

    async def traces(request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp has already undone Content-Encoding: gzip
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        auth = request.headers.get("Authorization", "")
        other["export_requests"] += 1
        if request.headers.get("x-langfuse-ingestion-version") != "4":
            other["missing_ingestion_version"] += 1
        now_ns = time.time_ns()
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    lags_ms.append((now_ns - span.end_time_unix_nano) / 1e6)
                    team = next((a.value.string_value for a in span.attributes if a.key == "spangate.team.id"), "")
                    counts[auth][team] += 1
        return web.json_response({})

    async def other_destination(request: web.Request) -> web.Response:
        # The generic webhook and the team's otlp destination: counted, not decoded (their own tests
        # check their payloads); the Langfuse counts above are what the delivery check compares.
        await request.read()
        other[f"{request.match_info['kind']}_requests"] += 1
        return web.json_response({})

    async def reset(_request: web.Request) -> web.Response:
        counts.clear()
        other.clear()
        lags_ms.clear()
        return web.json_response({})

    async def stats(_request: web.Request) -> web.Response:
        ordered = sorted(lags_ms)
        lag = {f"p{q}": round(ordered[min(len(ordered) - 1, len(ordered) * q // 100)], 1) for q in (50, 99)} \
            if ordered else {}
        return web.json_response({"counts": {a: dict(c) for a, c in counts.items()}, "other": dict(other),
                                  "lag_ms": lag})

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post(TRACES_PATH, traces)
    app.router.add_post("/other/{kind}/{team}", other_destination)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(f"READY {port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


class Sink:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--sink"], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("READY "):
            self.stop()
            sys.exit(f"sink did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def stats(self) -> dict[str, Any]:
        return httpx.get(self.url + "/stats", timeout=10).json()

    def reset(self) -> None:
        httpx.post(self.url + "/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# --- the gateway -----------------------------------------------------------------------------------


class Gateway:
    def __init__(self, workdir: Path, repo: Path, pin: int | None, linger: float | None = None,
                 linger_max: float | None = None) -> None:
        config = workdir / "gateway.yaml"
        extra = "" if linger is None else f"  delivery_linger_seconds: {linger}\n"
        extra += "" if linger_max is None else f"  delivery_linger_max_seconds: {linger_max}\n"
        config.write_text(CONFIG.format(master_key=MASTER_KEY, data_dir=workdir / "data", extra_settings=extra))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = (workdir / "gateway.log").open("w")
        env = {**os.environ, "PYTHONPATH": str(repo), "SPANGATE_SALT_KEY": SALT_KEY}
        # The venv of whichever checkout runs this script; the code under test is REPO's (PYTHONPATH).
        taskset = ["taskset", "-c", str(pin)] if pin is not None else []
        argv = [*taskset, str(Path(sys.executable).parent / "spangate"), "--config", str(config), "--host", "127.0.0.1",
                "--port", self.url.rsplit(":", 1)[1], "--num_workers", "1"]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        if not wait_for_http(self.url + "/health/liveliness", timeout=60, alive=lambda: self.proc.poll() is None):
            self.stop()
            sys.exit(f"gateway did not start; see {self.log.name}")

    def pids(self) -> list[int]:
        return [self.proc.pid, *descendants(self.proc.pid)]

    def threads(self) -> int:
        total = 0
        for pid in self.pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("Threads:"):
                    total += int(line.split()[1])
        return total

    def sample(self) -> dict[str, Any]:
        return {"processes": len(self.pids()), "threads": self.threads(), "rss_mb": round(rss_mb(self.pids()), 1)}

    def stop(self) -> None:
        stop_process(self.proc, timeout=30)
        self.log.close()


# --- driving it ------------------------------------------------------------------------------------


def team_keys(i: int) -> tuple[str, str]:
    return f"pk-lf-team{i:04d}", f"sk-lf-team{i:04d}-secret"


def basic(public_key: str, secret_key: str) -> str:
    return "Basic " + base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()


async def gather_limited(concurrency: int, jobs: list[Any]) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def run(job: Any) -> Any:
        async with gate:
            return await job

    return await asyncio.gather(*(run(j) for j in jobs))


def extra_callbacks(kinds: list[str], sink: Sink, i: int) -> list[dict[str, Any]]:
    """A team's destinations besides its Langfuse project, all on the stand-in: ``generic`` (the
    webhook, its default one-POST-per-call form) and ``otlp`` (the team's own OTLP/HTTP backend)."""
    made = []
    for kind in kinds:
        if kind == "generic":
            made.append({"callback_name": "generic", "callback_type": "success", "callback_vars": {
                "generic_logger_endpoint": f"{sink.url}/other/generic/{i}",
                "generic_logger_headers": f"authorization=Bearer team{i}"}})
        elif kind == "otlp":
            made.append({"callback_name": "otlp", "callback_type": "success", "callback_vars": {
                "otlp_endpoint": f"{sink.url}/other/otlp/{i}", "otlp_headers": f"x-api-key=team{i}"}})
    return made


async def create_team(admin: httpx.AsyncClient, sink: Sink, i: int, extra: tuple[str, ...] = ()) -> tuple[str, str]:
    """Team ``i`` with its own Langfuse project on the stand-in (and ``extra`` destinations), and a
    key; returns (team id, key). ``admin`` sends the master key."""
    reply = await admin.post("/team/new", json={"team_alias": f"team-{i}"})
    reply.raise_for_status()
    team_id = reply.json()["team_id"]
    public_key, secret_key = team_keys(i)
    reply = await admin.post(f"/team/{team_id}/callback", json={
        "callback_name": "langfuse", "callback_type": "success",
        "callback_vars": {"langfuse_public_key": public_key, "langfuse_secret_key": secret_key,
                          "langfuse_host": sink.url}})
    reply.raise_for_status()
    for callback in extra_callbacks(list(extra), sink, i):
        reply = await admin.post(f"/team/{team_id}/callback", json=callback)
        reply.raise_for_status()
    reply = await admin.post("/key/generate", json={"team_id": team_id})
    reply.raise_for_status()
    return team_id, reply.json()["key"]


async def configure_teams(gateway: Gateway, sink: Sink, teams: int, concurrency: int,
                          extra: list[str] = []) -> dict[str, Any]:  # noqa: B006 (never mutated)
    """Create the teams, their callbacks and one key each; returns team_id -> (index, key) and timings."""
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=60, trust_env=False) as admin:
        start = time.monotonic()
        made = await gather_limited(concurrency, [create_team(admin, sink, i, tuple(extra)) for i in range(teams)])
        elapsed = time.monotonic() - start
    return {"teams": {team_id: (i, key) for i, (team_id, key) in enumerate(made)}, "seconds": elapsed}


async def load(gateway: Gateway, keys: list[str], per_team: int, concurrency: int,
               rate: float | None = None) -> dict[str, Any]:
    # Idle connections are dropped here after 1 s, before the server's keep-alive timeout (5 s) can
    # close one just as it is reused (a paced load leaves most of the pool idle).
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=1.0)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60, trust_env=False, limits=limits) as client:
        statuses: Counter[int] = Counter()

        async def call(key: str, n: int, at: float | None = None) -> None:
            if at is not None:  # paced: this call starts at its slot, not as soon as a slot is free
                await asyncio.sleep(max(0.0, at - time.monotonic()))
            reply = await client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                                      json={"model": "gpt-4", "messages": [{"role": "user", "content": f"hi {n}"}],
                                            "metadata": {"generation_name": "bench", "session_id": key[-6:]}})
            statuses[reply.status_code] += 1

        order = [(key, n) for n in range(per_team) for key in keys]  # round-robin across teams
        pids = gateway.pids()
        cpu0, switches0, start = cpu_seconds(pids), context_switches(pids), time.monotonic()
        slots = [None if rate is None else start + i / rate for i in range(len(order))]
        await gather_limited(concurrency, [call(k, n, at) for (k, n), at in zip(order, slots, strict=True)])
        elapsed, cpu = time.monotonic() - start, cpu_seconds(pids) - cpu0
        switches = context_switches(pids) - switches0
    return {"requests": len(order), "seconds": round(elapsed, 2), "req_per_s": round(len(order) / elapsed, 1),
            "cpu_ms_per_req": round(1000 * cpu / len(order), 3),
            "context_switches_per_req": round(switches / len(order), 1), "statuses": dict(statuses)}


def check_delivery(sink: Sink, teams: dict[str, tuple[int, str]], per_team: int, timeout: float) -> dict[str, Any]:
    """Every team's spans under that team's credentials, and nothing anywhere else."""
    expected = {basic(*team_keys(i)): {team_id: per_team} for team_id, (i, _key) in teams.items()}
    deadline, start = time.monotonic() + timeout, time.monotonic()
    while True:
        stats = sink.stats()
        received = sum(sum(c.values()) for c in stats["counts"].values())
        if received >= len(teams) * per_team or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    wrong = {auth: got for auth, got in stats["counts"].items() if expected.get(auth) != got}
    return {"spans_received": received, "spans_expected": len(teams) * per_team,
            "seconds_until_all_arrived": round(time.monotonic() - start, 2),
            "projects_with_exactly_their_team": sum(1 for a, g in stats["counts"].items() if expected.get(a) == g),
            "projects_wrong_or_missing": len(wrong) + len(set(expected) - set(stats["counts"])),
            "export_requests": stats["other"].get("export_requests", 0),
            "export_requests_per_1000_calls": round(1000 * stats["other"].get("export_requests", 0) / max(received, 1)),
            "lag_ms": stats.get("lag_ms", {}),
            "sink_other": {k: v for k, v in stats["other"].items() if k != "export_requests"},
            "ok": not wrong and set(expected) == set(stats["counts"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--teams", type=int, default=1000)
    parser.add_argument("--per-team", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose gateway is measured")
    parser.add_argument("--pin", type=int, default=None, help="run the gateway on this CPU only (taskset)")
    parser.add_argument("--linger", type=float, default=None,
                        help="spangate_settings.delivery_linger_seconds (a branch that has it); unset: the default")
    parser.add_argument("--linger-max", type=float, default=None,
                        help="spangate_settings.delivery_linger_max_seconds (a branch that has it); equal to "
                             "--linger (0.2): every batch waits the base delay, as before it existed")
    parser.add_argument("--rate", type=float, default=None,
                        help="calls per second (paced); unset: as fast as --concurrency allows. Compare "
                             "spreads over teams at one rate: batches fill with the rate")
    parser.add_argument("--warmup", action=argparse.BooleanOptionalAction, default=True,
                        help="one call per team, delivered, before the measured load (default: on)")
    parser.add_argument("--extra", nargs="*", default=[], choices=("generic", "otlp"),
                        help="more destinations per team besides Langfuse (the three-destination figure)")
    args = parser.parse_args()
    if args.sink:
        run_sink()
        return
    sink = Sink()
    workdir = Path(tempfile.mkdtemp(prefix="spangate-teams-scale-"))
    gateway = Gateway(workdir, args.repo, args.pin, args.linger, args.linger_max)
    try:
        report: dict[str, Any] = {"teams": args.teams, "per_team": args.per_team, "concurrency": args.concurrency,
                                  "idle": gateway.sample()}
        configured = asyncio.run(configure_teams(gateway, sink, args.teams, min(args.concurrency, 16), args.extra))
        report["extra_destinations"], report["linger"], report["rate"] = args.extra, args.linger, args.rate
        report["linger_max"] = args.linger_max
        report["configure_seconds"] = round(configured["seconds"], 1)
        time.sleep(1.0)  # one watcher tick so the routes of the last teams are built
        report["configured"] = gateway.sample()
        keys = [key for _i, key in configured["teams"].values()]
        if args.warmup:
            # One call per team, delivered, before measuring: each destination's one-time work (its
            # exporter, its request head, the first read of its queue) is then out of the figures,
            # as it is out of a long-running gateway's. --no-warmup measures it in.
            report["warmup"] = asyncio.run(load(gateway, keys, 1, args.concurrency))
            warm = check_delivery(sink, configured["teams"], 1, timeout=60)
            if not warm["ok"]:
                sys.exit(f"teams_scale: the warm-up calls were not all delivered: {warm}")
            sink.reset()
        cpu0 = cpu_seconds(gateway.pids())
        report["load"] = asyncio.run(load(gateway, keys, args.per_team, args.concurrency, args.rate))
        report["after_load"] = gateway.sample()
        report["delivery"] = check_delivery(sink, configured["teams"], args.per_team, timeout=60)
        # Delivery that lingers past the load's end still costs CPU: count it until every span arrived.
        report["load"]["cpu_ms_per_req_incl_delivery"] = round(
            1000 * (cpu_seconds(gateway.pids()) - cpu0) / report["load"]["requests"], 3)
        report["after_delivery"] = gateway.sample()
    finally:
        gateway.stop()
        sink.stop()
    print(json.dumps(report, indent=2))
    results = BENCH_DIR / "results"
    results.mkdir(exist_ok=True)
    (results / f"teams-scale-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report, indent=2))
    if not report["delivery"]["ok"] or set(report["load"]["statuses"]) != {200}:
        sys.exit("teams_scale: FAILED (see delivery / statuses above)")


if __name__ == "__main__":
    main()
