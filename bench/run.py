"""Spangate speed bench: direct-to-upstream vs through the gateway, one command.

    .venv/bin/python bench/run.py [--quick] [--profile] [--direct-only]

Layout on this 2-core machine: the gateway (one worker) is pinned to core 0; the fake upstream,
its OTLP sink and wrk share core 1. For each scenario and concurrency the bench warms up, then
runs wrk and reads the gateway's CPU time (utime+stime of the process tree from /proc) before and
after, so "CPU ms/req" is what one request costs the gateway, spans and their export included.
Results are printed as a table and written to bench/results/ (gitignored).
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from procstat import cpu_seconds, descendants, free_port, machine_busy_seconds, rss_mb, stop_process, wait_for_http

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENV_BIN = REPO / ".venv" / "bin"
RESULTS_DIR = BENCH_DIR / "results"
WRK_SCRIPT = BENCH_DIR / "wrk_post.lua"
MASTER_KEY = "sk-bench-master-0123456789abcdef"
GATEWAY_CORE, LOAD_CORE = "0", "1"
CONCURRENCY = (1, 16, 64)

MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Say hello to the benchmark in one short sentence."},
]
SCENARIOS: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("/v1/chat/completions", {"model": "bench-chat", "messages": MESSAGES}),
    "chat-stream": (
        "/v1/chat/completions",
        {
            "model": "bench-chat",
            "messages": MESSAGES,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    ),
    "embeddings": (
        "/v1/embeddings",
        {"model": "bench-embed", "input": "The quick brown fox.", "encoding_format": "float"},
    ),
}

GATEWAY_CONFIG = """\
model_list:
  - model_name: bench-chat
    litellm_params:
      model: openai/bench-chat
      api_base: "http://127.0.0.1:{upstream}/v1"
      api_key: sk-bench-upstream
  - model_name: bench-embed
    litellm_params:
      model: openai/bench-embed
      api_base: "http://127.0.0.1:{upstream}/v1"
      api_key: sk-bench-upstream
litellm_settings:
  success_callback: {callbacks}
environment_variables:
  OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:{sink}"
  OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf"
  LANGSMITH_ENDPOINT: "http://127.0.0.1:{sink}"
  LANGSMITH_API_KEY: "lsv2-bench"
  LANGFUSE_HOST: "http://127.0.0.1:{sink}"
  LANGFUSE_PUBLIC_KEY: "pk-lf-bench"
  LANGFUSE_SECRET_KEY: "sk-lf-bench"
  GENERIC_LOGGER_ENDPOINT: "http://127.0.0.1:{sink}/sink/generic"
  DD_API_KEY: "dd-bench"
  DD_BASE_URL: "http://127.0.0.1:{sink}"
  ATHINA_API_KEY: "athina-bench"
  ATHINA_BASE_URL: "http://127.0.0.1:{sink}/sink"
  OPENMETER_API_KEY: "om-bench"
  OPENMETER_API_ENDPOINT: "http://127.0.0.1:{sink}/sink"
spangate_settings:
  data_dir: "{data_dir}"
  durable_delivery: {durable}
general_settings:
  master_key: "{master_key}"
"""


# --- tools ---------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """wrk from Debian's packages; install it when we can, else stop with what to run."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found: installing it with apt-get (Debian package 'wrk')...", flush=True)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT}
        subprocess.run(["apt-get", "update", "-qq"], check=False, **quiet)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, **quiet)
        found = shutil.which("wrk")
    if not found:
        sys.exit("bench: the load generator wrk is missing. Install it: sudo apt-get install -y wrk")
    return found


def gateway_env() -> dict[str, str]:
    # The repo root on PYTHONPATH: an editable install made before app/ had modules can leave the
    # `spangate` script unable to import `app`; the bench should measure the tree it sits in anyway.
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def pinned(core: str, argv: list[str]) -> list[str]:
    return (["taskset", "-c", core] if shutil.which("taskset") else []) + argv


def gateway_unavailable_reason(spangate: Path) -> str | None:
    """Why the gateway cannot be benchmarked yet, or None when it can."""
    if spangate == VENV_BIN / "spangate" and not (REPO / "app" / "cli.py").exists():
        return "app/cli.py does not exist yet"
    if not spangate.exists():
        return f"{spangate} is not installed (pip install -e .)"
    probe = subprocess.run(
        [str(spangate), "--help"], capture_output=True, text=True, timeout=60, check=False, env=gateway_env()
    )
    if probe.returncode != 0:
        return f"`spangate --help` exited {probe.returncode}: {(probe.stderr or probe.stdout).strip()[-300:]}"
    return None


# --- processes -----------------------------------------------------------------------------------


class Upstream:
    """The fake upstream + OTLP sink as a child process pinned to the load core."""

    def __init__(self, script: str = "fake_upstream.py") -> None:
        argv = [sys.executable, str(BENCH_DIR / script), "--port", "0", "--otlp-port", "0"]
        self.proc = subprocess.Popen(pinned(LOAD_CORE, argv), stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("READY "):
            self.stop()
            sys.exit(f"bench: fake upstream did not start (got {line!r})")
        ports = json.loads(line.removeprefix("READY "))
        self.port, self.otlp_port = ports["port"], ports["otlp_port"]

    def pids(self) -> list[int]:
        return [self.proc.pid]

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.otlp_port}/stats", timeout=5) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Gateway:
    """`spangate --num_workers 1` pinned to the gateway core, with a generated config."""

    def __init__(self, spangate: Path, upstream: Upstream, workdir: Path, args: argparse.Namespace,
                 config_template: str = GATEWAY_CONFIG) -> None:
        data_dir = workdir / "gateway-data"
        data_dir.mkdir()
        config = workdir / "gateway.yaml"
        config.write_text(
            config_template.format(
                upstream=upstream.port,
                sink=upstream.otlp_port,
                data_dir=data_dir,
                master_key=MASTER_KEY,
                callbacks=json.dumps(args.callbacks),
                durable="false" if args.memory_only else "true",
            )
        )
        self.port = free_port()
        argv = [str(spangate), "--config", str(config), "--host", "127.0.0.1", "--port", str(self.port)]
        self.log = (workdir / "gateway.log").open("w")
        self.proc = subprocess.Popen(
            pinned(GATEWAY_CORE, [*argv, "--num_workers", "1"]),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=gateway_env(),
        )
        self.url = f"http://127.0.0.1:{self.port}"
        if not wait_for_http(f"{self.url}/health/liveliness", timeout=60, alive=lambda: self.proc.poll() is None):
            self.stop()
            tail = Path(self.log.name).read_text()[-2000:]
            raise RuntimeError(f"gateway did not become live on {self.url}; log tail:\n{tail}")

    def pids(self) -> list[int]:
        return [self.proc.pid, *descendants(self.proc.pid)]

    def stop(self) -> None:
        stop_process(self.proc, timeout=15)
        self.log.close()


# --- one measurement -----------------------------------------------------------------------------


def check_answer(base_url: str, scenario: str) -> str | None:
    """One request by hand before loading a target: a fast error must not pass for a fast answer."""
    path, body = SCENARIOS[scenario]
    request = urllib.request.Request(
        base_url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {MASTER_KEY}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        detail = exc.read().decode()[:300] if isinstance(exc, urllib.error.HTTPError) else ""
        return f"{exc} {detail}".strip()
    expected = {"chat": '"choices"', "chat-stream": "data: [DONE]", "embeddings": '"embedding"'}[scenario]
    return None if expected in text else f"unexpected answer: {text[:300]}"


def run_wrk(wrk: str, url: str, body_file: Path, connections: int, seconds: float) -> dict[str, Any]:
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file), "BENCH_AUTH": MASTER_KEY}
    argv = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    out = subprocess.run(
        pinned(LOAD_CORE, [*argv, "-s", str(WRK_SCRIPT), url]),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line.removeprefix("BENCH_RESULT "))
    raise RuntimeError(f"wrk gave no result (exit {out.returncode}): {out.stderr or out.stdout}")


class Target:
    """What is measured (``pids``: its CPU and RSS are reported) and our other processes."""

    def __init__(self, name: str, url: str, pids: Callable[[], list[int]], helpers: Callable[[], list[int]]):
        self.name, self.url, self.pids, self.helpers = name, url, pids, helpers


def _wrk_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk is the only child we wait for
    return usage.ru_utime + usage.ru_stime


def measure(wrk: str, target: Target, path: str, body_file: Path, connections: int, args: Any) -> dict[str, Any]:
    """Warm up, then one timed wrk run with CPU counters read around it.

    ``other_cpu_pct`` is the share of the machine that processes other than ours used meanwhile
    (other people's test runs on a shared box): a run with a high figure is not to be trusted.
    """
    url = target.url + path
    run_wrk(wrk, url, body_file, connections, args.warmup)
    before = (cpu_seconds(target.pids()), cpu_seconds(target.helpers()), _wrk_cpu_seconds(), machine_busy_seconds())
    result = run_wrk(wrk, url, body_file, connections, args.duration)
    after = (cpu_seconds(target.pids()), cpu_seconds(target.helpers()), _wrk_cpu_seconds(), machine_busy_seconds())
    own, helpers, load, busy = (a - b for a, b in zip(after, before, strict=True))
    wall = result["duration_us"] / 1e6
    result.update(
        rps=result["requests"] / wall,
        cpu_ms_per_req=own * 1000 / max(result["requests"], 1),
        errors=result["non_2xx"] + result["socket_errors"],
        rss_mb=rss_mb(target.pids()),
        other_cpu_pct=max(0.0, busy - own - helpers - load) * 100 / (wall * (os.cpu_count() or 1)),
    )
    return result


# --- the whole bench -----------------------------------------------------------------------------


def bench_target(target: Target, args: argparse.Namespace, wrk: str, workdir: Path) -> list[dict[str, Any]]:
    rows = []
    for scenario in args.scenarios:
        problem = check_answer(target.url, scenario)
        if problem:
            print(f"  {target.name} {scenario}: skipped, {problem}", flush=True)
            continue
        path, body = SCENARIOS[scenario]
        body_file = workdir / f"{scenario}.json"
        body_file.write_text(json.dumps(body))
        for connections in args.concurrency:
            result = measure(wrk, target, path, body_file, connections, args)
            rows.append({"target": target.name, "scenario": scenario, "concurrency": connections, **result})
            print(
                f"  {target.name:8} {scenario:12} c={connections:<3} {result['rps']:9.0f} req/s"
                f"  (other load {result['other_cpu_pct']:.0f}%)",
                flush=True,
            )
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    direct = {(r["scenario"], r["concurrency"]): r for r in rows if r["target"] == "direct"}
    header = (
        f"{'scenario':12} {'conc':>4} {'target':8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'+p50 ms':>8} {'CPU ms/req':>10} {'RSS MB':>7} {'errors':>6} {'other%':>6}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for r in sorted(rows, key=lambda r: (r["scenario"], r["concurrency"], r["target"] != "direct")):
        base = direct.get((r["scenario"], r["concurrency"]))
        added = f"{(r['p50_us'] - base['p50_us']) / 1000:+8.2f}" if base and r is not base else f"{'':8}"
        print(
            f"{r['scenario']:12} {r['concurrency']:>4} {r['target']:8} {r['rps']:9.0f} "
            f"{r['p50_us'] / 1000:8.2f} {r['p99_us'] / 1000:8.2f} {added} "
            f"{r['cpu_ms_per_req']:10.3f} {r['rss_mb']:7.1f} {r['errors']:>6} {r['other_cpu_pct']:6.0f}"
        )
    print("CPU ms/req and RSS: of the process under test (direct: the fake upstream; gateway: the gateway).")
    print("other%: machine CPU used by processes outside the bench meanwhile; distrust rows where it is high.")


def profile_gateway(gateway: Gateway, args: argparse.Namespace, wrk: str, workdir: Path) -> None:
    py_spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
    if not Path(py_spy).exists():
        print("profile: py-spy is missing; install it with .venv/bin/pip install py-spy", flush=True)
        return
    path, body = SCENARIOS["chat"]
    body_file = workdir / "profile-chat.json"
    body_file.write_text(json.dumps(body))
    seconds = max(args.duration, 10)
    out = RESULTS_DIR / f"profile-chat-c16-{time.strftime('%Y%m%d-%H%M%S')}.speedscope.json"
    run_wrk(wrk, gateway.url + path, body_file, 16, args.warmup)
    spy = subprocess.Popen(
        [py_spy, "record", "--pid", str(gateway.proc.pid), "--subprocesses", "--rate", "200",
         "--format", "speedscope", "--duration", str(round(seconds)), "--nonblocking", "-o", str(out)],
    )  # fmt: skip
    run_wrk(wrk, gateway.url + path, body_file, 16, seconds + 1)
    spy.wait(timeout=seconds + 60)
    print(f"profile: {out} (open in https://www.speedscope.app or `speedscope`)", flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Spangate speed bench (direct vs through the gateway).")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 s warm-up")
    parser.add_argument("--profile", action="store_true", help="also py-spy the gateway at concurrency 16")
    parser.add_argument("--direct-only", action="store_true", help="measure only the direct path")
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--concurrency", nargs="+", type=int, default=list(CONCURRENCY))
    parser.add_argument("--duration", type=float, help="seconds per measured run (default 8, quick 3)")
    parser.add_argument(
        "--callbacks", nargs="+", default=["file", "otel"], help="the gateway's success_callback (default: file otel)"
    )
    parser.add_argument("--memory-only", action="store_true", help="durable_delivery: false (no spool)")
    parser.add_argument("--spangate", type=Path, default=VENV_BIN / "spangate")
    args = parser.parse_args()
    args.duration = args.duration or (3.0 if args.quick else 8.0)
    args.warmup = 1.0 if args.quick else 2.0
    return args


def main() -> None:
    args = parse_args()
    wrk = ensure_wrk()
    RESULTS_DIR.mkdir(exist_ok=True)
    upstream = Upstream()
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="spangate-bench-") as tmp:
            workdir = Path(tmp)
            print(f"fake upstream on :{upstream.port} (OTLP sink :{upstream.otlp_port})", flush=True)
            direct = Target("direct", f"http://127.0.0.1:{upstream.port}", upstream.pids, list)
            rows += bench_target(direct, args, wrk, workdir)
            reason = "--direct-only" if args.direct_only else gateway_unavailable_reason(args.spangate)
            if reason:
                print(f"gateway rows skipped: {reason}", flush=True)
            else:
                rows += run_gateway(upstream, args, wrk, workdir)
    finally:
        upstream.stop()
    print_table(rows)
    out = RESULTS_DIR / f"run-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1))
    print(f"raw results: {out}")


def run_gateway(upstream: Upstream, args: argparse.Namespace, wrk: str, workdir: Path) -> list[dict[str, Any]]:
    try:
        gateway = Gateway(args.spangate, upstream, workdir, args)
    except RuntimeError as exc:
        print(f"gateway rows skipped: {exc}", flush=True)
        return []
    try:
        print(f"gateway on {gateway.url}, idle RSS {rss_mb(gateway.pids()):.1f} MB", flush=True)
        rows = bench_target(Target("gateway", gateway.url, gateway.pids, upstream.pids), args, wrk, workdir)
        time.sleep(1)  # let the span batch in flight reach the sink before reading its counters
        sink = {k: v for k, v in upstream.stats().items()
                if k.endswith(("/v1/traces", "/v1/metrics", "/v1/logs", "_bytes", "/api/v2/logs")) or "/sink/" in k}
        print(f"sinks received: {sink or 'nothing (is a remote destination on?)'}", flush=True)
        if args.profile:
            profile_gateway(gateway, args, wrk, workdir)
        return rows
    finally:
        gateway.stop()


if __name__ == "__main__":
    main()
