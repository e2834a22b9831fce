"""Delivery through the real ``spangate`` process: nothing a completed call logged is lost.

The gateway runs as a subprocess (as users run it) with a team whose Langfuse project is down;
we stop it with SIGTERM or kill -9, bring the project up, restart the gateway on the same data
dir, and count spans by id at the project.
"""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
import yaml

from contracts import semconv as sc
from tests.support.otlp import OtlpSink, decode_otlp_traces
from tests.support.process import gateway_process
from tests.support.sinks import Received, Reply

MASTER = "sk-test-master-0123456789abcdef"
TEAM = "team-durable"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "model_list": [{"model_name": "gpt-4", "litellm_params": {"model": "mock/gpt-4"}}],
        "general_settings": {"master_key": MASTER},
        "spangate_settings": {"data_dir": str(tmp_path / "data"), "shutdown_flush_seconds": 2,
                              "team_poll_seconds": 0.2},
    }))
    return path


def _admin(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"authorization": f"Bearer {MASTER}"}, timeout=10)


def _setup_team(base: str, langfuse_url: str) -> str:
    with _admin(base) as admin:
        assert admin.post("/team/new", json={"team_id": TEAM}).status_code == 200
        answer = admin.post(f"/team/{TEAM}/callback", json={
            "callback_name": "langfuse", "callback_type": "success",
            "callback_vars": {"langfuse_public_key": "pk-d", "langfuse_secret_key": "sk-d",
                              "langfuse_host": langfuse_url}})
        assert answer.status_code == 200, answer.text
        return admin.post("/key/generate", json={"team_id": TEAM}).json()["key"]


def _chat(base: str, key: str, n: int) -> list[str]:
    """n completed calls; returns the response ids (the spans' gen_ai.response.id)."""
    ids = []
    with httpx.Client(base_url=base, headers={"authorization": f"Bearer {key}"}, timeout=10) as client:
        for i in range(n):
            answer = client.post("/v1/chat/completions", json={
                "model": "gpt-4", "messages": [{"role": "user", "content": f"call {i}"}]})
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["id"])
    return ids


def _wait_spooled(base: str, count: int) -> None:
    deadline = time.monotonic() + 10
    with _admin(base) as admin:
        while True:
            health = admin.get("/health/destinations").json()["destinations"]
            mine = next(h for h in health if h["team"] == TEAM)
            if mine["spooled"] >= count:
                return
            assert time.monotonic() < deadline, f"only {mine['spooled']} of {count} spans spooled"
            time.sleep(0.02)


class Project:
    """A Langfuse stand-in that can be down (503) or up; counts only what it accepted."""

    def __init__(self) -> None:
        self.up = False
        self.accepted: list[str] = []  # gen_ai.response.id of each span in a 200-answered request
        self.refused = 0

    def respond(self, req: Received) -> Reply:
        if not self.up:
            self.refused += 1
            return Reply(status=503)
        self.accepted.extend(s["attributes"].get(sc.RESPONSE_ID) for s in decode_otlp_traces(req.body))
        return Reply(status=200)


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["sigterm", "kill9"])
def test_spans_of_completed_calls_survive_a_stop_while_the_project_is_down(tmp_path: Path, stop: str) -> None:
    config, port = _config(tmp_path), _free_port()
    base = f"http://127.0.0.1:{port}"
    state = Project()
    with OtlpSink(state.respond) as project:
        with gateway_process(config, port) as proc:
            key = _setup_team(base, project.url)
            sent = _chat(base, key, 20)
            project.wait_for(lambda reqs: len(reqs) >= 1)  # it tried, and got 503
            # The writer group-commits within milliseconds; the stop comes once all 20 are spooled.
            _wait_spooled(base, len(sent))
            if stop == "sigterm":
                proc.send_signal(signal.SIGTERM)
                proc.wait(15)  # uvicorn re-raises SIGTERM after a graceful shutdown: the code is -15 either way
                assert proc.stdout is not None
                assert b"Application shutdown complete" in proc.stdout.read()
            else:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
        assert state.accepted == [] and state.refused >= 1
        state.up = True
        with gateway_process(config, port):
            project.wait_for(lambda _reqs: set(sent) <= set(state.accepted), timeout=20)
        delivered = list(state.accepted)
    assert sorted(set(delivered)) == sorted(sent)  # every completed call, exactly these
    assert len(delivered) - len(set(delivered)) <= 20  # duplicates only within an in-flight batch


def test_health_destinations_and_metrics_account_for_every_span(tmp_path: Path) -> None:
    config, port = _config(tmp_path), _free_port()
    base = f"http://127.0.0.1:{port}"
    with OtlpSink(lambda req: Reply(status=401, body=b'{"message":"bad keys"}')) as project, \
            gateway_process(config, port):
        key = _setup_team(base, project.url)
        _chat(base, key, 3)
        with _admin(base) as admin:
            deadline = time.monotonic() + 10
            while True:
                health = admin.get("/health/destinations").json()["destinations"]
                mine = next(h for h in health if h["team"] == TEAM)
                if mine["dead_lettered"] == 3 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert mine["dead_lettered"] == 3  # 401 is permanent: dead-lettered, not retried forever
            assert mine["delivered"] == 0 and mine["queued"] == 0
            assert "401" in (mine["last_error"] or "")
            tested = admin.post(f"/team/{TEAM}/callback/test").json()
            assert tested["status"] == "failure"
            assert tested["results"][0]["http_status"] == 401
            metrics = admin.get("/metrics").text
            assert 'outcome="dead_lettered"' in metrics
            assert "gen_ai_client_token_usage_bucket" in metrics
            assert httpx.get(f"{base}/health/destinations").status_code == 401
            assert httpx.get(f"{base}/health/destinations",
                             headers={"authorization": f"Bearer {key}"}).status_code == 403
