"""Interop: Arize Phoenix, a real OTLP backend, reads what Spangate exports, one project per team.

Phoenix (``arize-phoenix`` from the package index) lives in a venv of its own, never in the gateway's:
its dependencies must not move Spangate's. The script creates that venv when it is missing, starts
``phoenix serve`` on loopback (its own working dir and SQLite under a temp dir, telemetry pixels and
external resources off, a proxy that goes nowhere for anything not on loopback), a fake OpenAI upstream,
a Content Safety stand-in, and the real gateway (the CLI, one worker). Through the admin API two teams get
an ``otlp`` callback to Phoenix's ``/v1/traces`` with ``openinference.project.name`` set to their project
(the resource attribute Phoenix files a ResourceSpans under), then each makes plain, streamed and blocked
calls. It then reads Phoenix's own REST API (``/v1/projects``, ``/v1/projects/{name}/spans``) and checks
that each team's spans are in its own project and only there, that Phoenix read the calls as LLM spans
with model and tokens, and that the Content Safety checks are guardrail children in the call's trace.

    .venv/bin/python bench/phoenix_interop.py              # venv /tmp/phoenix-venv, 3 plain calls per team
    .venv/bin/python bench/phoenix_interop.py --calls 10 --venv /tmp/other-venv --work-dir /tmp/keep-me

Prints a PASS/FAIL report with counts; exits 1 on FAIL. Not part of the default suite: the ``interop``
test in tests/e2e/destinations/test_phoenix_interop.py runs it when SPANGATE_INTEROP=1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from openai import BadRequestError, OpenAI

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.phoenix_checks import Expected, check_phoenix, print_report  # noqa: E402
from bench.procstat import free_port  # noqa: E402
from tests.support.content_safety import ContentSafetyStandIn  # noqa: E402
from tests.support.process import gateway_process  # noqa: E402
from tests.support.upstream import FakeOpenAI  # noqa: E402

PHOENIX_SPEC = "arize-phoenix>=20.26,<21"  # the major this script was proven against; --phoenix-spec to move
MASTER_KEY = "sk-interop-master-7d41c0b9e2a6"
CS_KEY = "interop-content-safety-key"
FLAGGED = "INTEROP-FLAGGED-8c1d"  # the stand-in rates a text containing it Hate 6: the call is blocked
TEAMS = ("team-a", "team-b")
START_TIMEOUT = 180.0  # Phoenix's first start runs its migrations
DELIVERY_TIMEOUT = 60.0
CONFIG = """model_list:
  - model_name: gpt
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{upstream}", api_key: sk-interop-upstream}}
general_settings:
  master_key: {master_key}
litellm_settings:
  callbacks: ["azure_content_safety"]
  azure_content_safety_params: {{endpoint: "{content_safety}", key: {cs_key}}}
spangate_settings:
  data_dir: {data}
  durable_delivery: false
  team_poll_seconds: 0.2
  delivery_linger_seconds: 0.05
"""


# --- Phoenix: its own venv and server --------------------------------------------------------------


def ensure_phoenix(venv: Path, python: str, spec: str) -> tuple[Path, str, float]:
    """``venv/bin/phoenix``, its installed version and the seconds spent installing (0 when it was there)."""
    started = time.monotonic()
    phoenix = venv / "bin" / "phoenix"
    installing = not phoenix.exists()
    if installing:
        print(f"installing {spec} into {venv} ...", flush=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", spec], check=True)
    version = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "import importlib.metadata as m; print(m.version('arize-phoenix'))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    return phoenix, version, time.monotonic() - started if installing else 0.0


def phoenix_env(work: Path, port: int, grpc_port: int) -> dict[str, str]:
    # The runner's own PHOENIX_*/OTEL_* settings must not reach this server (a collector endpoint would
    # make Phoenix trace itself elsewhere). Anything not on loopback goes to a proxy that refuses.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "OTEL_"))}
    nowhere = "http://127.0.0.1:9"
    return {**env, "PHOENIX_HOST": "127.0.0.1", "PHOENIX_PORT": str(port), "PHOENIX_GRPC_PORT": str(grpc_port),
            "PHOENIX_WORKING_DIR": str(work), "PHOENIX_TELEMETRY_ENABLED": "false",
            "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false", "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
            "PHOENIX_ENABLE_MCP_SERVER": "false", "HTTP_PROXY": nowhere, "HTTPS_PROXY": nowhere,
            "ALL_PROXY": nowhere, "NO_PROXY": "127.0.0.1,localhost", "http_proxy": nowhere, "https_proxy": nowhere,
            "all_proxy": nowhere, "no_proxy": "127.0.0.1,localhost"}


@contextmanager
def phoenix_server(phoenix: Path, work: Path) -> Iterator[str]:
    """``phoenix serve`` on a free loopback port until it answers /healthz; its output goes to work/phoenix.log."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with open(work / "phoenix.log", "wb") as log:
        proc = subprocess.Popen([str(phoenix), "serve"], cwd=work, env=phoenix_env(work, port, free_port()),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: _answers(url + "/healthz") or proc.poll() is not None, START_TIMEOUT, "Phoenix start")
            if proc.poll() is not None:
                raise SystemExit(f"phoenix serve exited {proc.returncode}; see {work / 'phoenix.log'}")
            yield url
        finally:
            _stop(proc)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2, trust_env=False).status_code == 200
    except httpx.TransportError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's own process group (the one this script started), SIGKILL after 15 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def wait_until(done: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> float:
    """Seconds until ``done()`` held; SystemExit naming ``what`` at the deadline."""
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - start


# --- the gateway, its teams and their calls ---------------------------------------------------------


@dataclass
class Team:
    project: str
    team_id: str
    key: str
    calls: dict[str, int] = field(default_factory=dict)  # plain / stream / blocked -> how many made


def configure_team(admin: httpx.Client, project: str, traces_url: str) -> Team:
    """A team through the admin API, as the README's Phoenix example does: team, otlp callback, key."""
    team_id = _ok(admin.post("/team/new", json={"team_alias": project}))["team_id"]
    _ok(admin.post(f"/team/{team_id}/callback", json={"callback_name": "otlp", "callback_vars": {
        "otlp_endpoint": traces_url, "otlp_resource_attributes": f"openinference.project.name={project}"}}))
    return Team(project, team_id, _ok(admin.post("/key/generate", json={"team_id": team_id}))["key"])


def _ok(reply: httpx.Response) -> Any:
    if reply.status_code != 200:
        raise SystemExit(f"{reply.request.method} {reply.request.url.path}: {reply.status_code} {reply.text[:300]}")
    return reply.json()


def make_calls(base_url: str, team: Team, plain: int) -> None:
    """``plain`` chat calls, one streamed call (usage included) and one the moderation blocks."""
    with OpenAI(base_url=base_url + "/v1", api_key=team.key, max_retries=0, timeout=30,
                http_client=httpx.Client(trust_env=False)) as client:
        for i in range(plain):
            client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": f"{team.project} #{i}"}])
        stream = client.chat.completions.create(model="gpt", stream=True, stream_options={"include_usage": True},
                                                messages=[{"role": "user", "content": f"{team.project} streamed"}])
        assert any(chunk.choices for chunk in stream)
        try:
            client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": f"say {FLAGGED}"}])
            raise SystemExit("the flagged call was not blocked: moderation is not on")
        except BadRequestError:
            pass
    team.calls = {"plain": plain, "stream": 1, "blocked": 1}


def ledger(admin: httpx.Client, team: Team) -> dict[str, Any]:
    """The team's otlp row of ``GET /team/{id}/deliveries``: what the gateway says it delivered."""
    rows = _ok(admin.get(f"/team/{team.team_id}/deliveries"))["destinations"]
    return next(r for r in rows if r["callback_name"] == "otlp")


def spans_of(phoenix: str, project: str) -> list[dict[str, Any]]:
    """Every span Phoenix's REST API lists for ``project`` (paged; a missing project is an empty list)."""
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        reply = httpx.get(f"{phoenix}/v1/projects/{project}/spans", params=params, timeout=10, trust_env=False)
        if reply.status_code == 404:
            return out
        reply.raise_for_status()
        body = reply.json()
        out += body["data"]
        if not (cursor := body.get("next_cursor")):
            return out


def delivered_and_stored(admin: httpx.Client, phoenix: str, teams: list[Team]) -> bool:
    """Every team's queue is empty, and Phoenix lists exactly as many spans as the ledger says went out."""
    for team in teams:
        row = ledger(admin, team)
        if row["queued"] or row["retrying"] or row["delivered"] != len(spans_of(phoenix, team.project)):
            return False
    return True


# --- main -------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, work: Path) -> int:
    timings: dict[str, float] = {}
    started = time.monotonic()
    phoenix_bin, version, timings["install"] = ensure_phoenix(args.venv, args.python, args.phoenix_spec)
    with ExitStack() as stack:
        t0 = time.monotonic()
        phoenix = stack.enter_context(phoenix_server(phoenix_bin, work / "phoenix"))
        timings["phoenix start"] = time.monotonic() - t0
        upstream = stack.enter_context(FakeOpenAI())
        cs = stack.enter_context(ContentSafetyStandIn(key=CS_KEY))
        cs.score(FLAGGED, Hate=6)
        config = work / "gateway.yaml"
        config.write_text(CONFIG.format(upstream=upstream.api_base, master_key=MASTER_KEY, cs_key=CS_KEY,
                                        content_safety=cs.endpoint, data=work / "gateway-data"))
        port = free_port()
        log = stack.enter_context(open(work / "gateway.log", "wb"))
        stack.enter_context(gateway_process(config, port, output=log, debug=False))
        base_url = f"http://127.0.0.1:{port}"
        admin = stack.enter_context(httpx.Client(base_url=base_url, trust_env=False, timeout=10,
                                                 headers={"Authorization": f"Bearer {MASTER_KEY}"}))
        teams = [configure_team(admin, project, phoenix + "/v1/traces") for project in TEAMS]
        t0 = time.monotonic()
        for i, team in enumerate(teams):
            make_calls(base_url, team, args.calls + i)  # team-b makes one more: counts must not match by luck
        timings["calls"] = time.monotonic() - t0
        timings["delivered and stored"] = wait_until(lambda: delivered_and_stored(admin, phoenix, teams),
                                                     DELIVERY_TIMEOUT, "every span in Phoenix")
        expected = [Expected(t.project, t.team_id, t.calls, ledger(admin, t)["delivered"]) for t in teams]
        projects = _ok(httpx.get(phoenix + "/v1/projects", trust_env=False, timeout=10))["data"]
        stored = {p["name"]: spans_of(phoenix, p["name"]) for p in projects}
        served = httpx.get(phoenix + "/arize_phoenix_version", trust_env=False, timeout=10).text.strip()
    timings["total"] = time.monotonic() - started
    checks, counts = check_phoenix(expected, stored, FLAGGED)
    _save(work, stored)
    return print_report(f"arize-phoenix {version} (server says {served})", checks, counts, timings)


def _save(work: Path, stored: dict[str, list[dict[str, Any]]]) -> None:
    (work / "phoenix-spans.json").write_text(json.dumps(stored, indent=1, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", type=Path, default=Path("/tmp/phoenix-venv"), help="Phoenix's own venv")
    parser.add_argument("--python", default="python3.11", help="interpreter for a new venv")
    parser.add_argument("--phoenix-spec", default=PHOENIX_SPEC, help="what pip installs into a new venv")
    parser.add_argument("--calls", type=int, default=3, help="plain calls of team-a (team-b makes one more)")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep logs and Phoenix's data here")
    args = parser.parse_args()
    if args.work_dir:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        sys.exit(run(args, args.work_dir))
    with tempfile.TemporaryDirectory(prefix="phoenix-interop-") as tmp:
        sys.exit(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
