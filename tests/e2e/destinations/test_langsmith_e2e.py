"""LangSmith end to end: the real gateway, the official openai client, loopback LangSmith stand-ins.

The seed's team page promises "Team 3 -> Logs to Langsmith": here teams log to their own LangSmith
projects through ``POST /team/{id}/callback``, a team without an entry falls back to the operator's
global ``success_callback: ["langsmith"]``, and a LangSmith that answers 500 or 429 breaks nothing.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from openai import RateLimitError

from app.api.admin import MASK
from contracts import semconv as sc
from tests.support.gateway import running_gateway
from tests.support.otlp import OtlpSink
from tests.support.sinks import Reply
from tests.support.teams import (
    MODEL,
    SALT_KEY,
    admin_client,
    database,
    error_of,
    gateway_settings,
    mock_models,
    openai_client,
)
from tests.support.upstream import Behaviour, FakeOpenAI

TEAM = sc.TEAM_ID
TRACES_PATH = "/otel/v1/traces"


@dataclass
class LangSmithProject:
    """A loopback LangSmith: the sink, and the key and project name that must reach it."""

    name: str
    sink: OtlpSink = field(default_factory=lambda: OtlpSink(path_suffix=TRACES_PATH))
    api_key: str = ""

    def __post_init__(self) -> None:
        self.api_key = self.api_key or f"lsv2_pt_{self.name}_{secrets.token_hex(8)}"

    def callback_body(self, **extra_vars: Any) -> dict[str, Any]:
        return {"callback_name": "langsmith", "callback_vars": {
            "langsmith_api_key": self.api_key, "langsmith_project": self.name, "langsmith_base_url": self.sink.url,
            **extra_vars}}

    def env(self) -> dict[str, str]:
        return {"LANGSMITH_API_KEY": self.api_key, "LANGSMITH_PROJECT": self.name,
                "LANGSMITH_ENDPOINT": self.sink.url, "SPANGATE_SALT_KEY": SALT_KEY}

    def spans(self) -> list[dict[str, Any]]:
        return self.sink.spans()

    def assert_only(self, team_id: str | None, count: int) -> None:
        """Exactly ``count`` spans, all of ``team_id``, each request with this project's key and name."""
        assert self.sink.requests, f"{self.name} received nothing"
        for request in self.sink.requests:
            assert (request.method, request.path) == ("POST", TRACES_PATH)
            assert request.headers["x-api-key"] == self.api_key, f"{self.name} got a foreign key"
            assert request.headers["langsmith-project"] == self.name
            assert (request.headers["content-encoding"], request.headers["content-type"]) == (
                "gzip", "application/x-protobuf")
        assert Counter(s["attributes"].get(TEAM) for s in self.spans()) == {team_id: count}


@contextmanager
def projects(*names: str) -> Iterator[dict[str, LangSmithProject]]:
    with ExitStack() as stack:
        found = {name: LangSmithProject(name) for name in names}
        for project in found.values():
            stack.enter_context(project.sink)
        yield found


def quick_stop(settings: dict[str, Any]) -> dict[str, Any]:
    """A destination that never accepts would hold the stop for the whole flush timeout (10 s)."""
    return {**settings, "spangate_settings": {**settings["spangate_settings"], "shutdown_flush_seconds": 0.2}}


def send_chats(base_url: str, key: str, count: int, team: str) -> None:
    with openai_client(base_url, key) as client:
        for i in range(count):
            reply = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"hi from {team} #{i}"}],
                extra_body={"metadata": {"generation_name": f"gen-{team}", "trace_user_id": f"user-{team}",
                                         "session_id": f"session-{team}", "tags": [team, "seed"],
                                         "feature": "search"}})
            assert reply.choices[0].message.content


def assert_mapped(project: LangSmithProject, team: str) -> None:
    for span in project.spans():
        attrs = span["attributes"]
        assert span["name"] == attrs["langsmith.trace.name"] == f"gen-{team}"
        assert attrs["langsmith.span.kind"] == "llm"
        assert attrs["langsmith.metadata.user_id"] == f"user-{team}"
        assert attrs["langsmith.metadata.session_id"] == f"session-{team}"
        assert attrs["langsmith.span.tags"] == f"{team},seed"
        assert attrs["langsmith.metadata.feature"] == "search"
        assert attrs["gen_ai.usage.total_tokens"] == attrs["gen_ai.usage.input_tokens"] + attrs[
            "gen_ai.usage.output_tokens"]
        assert not any(k.startswith("spangate.metadata.") for k in attrs)
        assert "spangate.key.hash" not in attrs


def test_global_form_from_the_environment(tmp_path: Path) -> None:
    with projects("ops") as found:
        config = {"model_list": mock_models(), "litellm_settings": {"success_callback": ["langsmith"]}}
        with running_gateway(config, data_dir=tmp_path, env=found["ops"].env()) as gw:
            send_chats(gw.base_url, "anything", 2, "ops")
            found["ops"].sink.wait_for_spans(2)
    found["ops"].assert_only(None, 2)
    assert_mapped(found["ops"], "ops")


def test_team_3_logs_to_langsmith_and_teams_never_cross(tmp_path: Path) -> None:
    counts = {"one": 3, "two": 2, "three": 4}  # distinct, so a misrouted span changes a count
    with (database("sqlite", tmp_path) as db, projects("A", "B", "operator") as found,
          running_gateway(gateway_settings(db, success_callback=["langsmith"]), data_dir=tmp_path,
                          env=found["operator"].env()) as gw,
          admin_client(gw.base_url) as admin):
        teams = {name: admin.post("/team/new", json={"team_alias": name}).json()["team_id"] for name in counts}
        for name, project in (("one", found["A"]), ("two", found["B"])):
            reply = admin.post(f"/team/{teams[name]}/callback", json=project.callback_body())
            assert reply.status_code == 200, reply.text
        keys = {name: admin.post("/key/generate", json={"team_id": t}).json()["key"] for name, t in teams.items()}
        for name, count in counts.items():
            send_chats(gw.base_url, keys[name], count, name)
        for name, project in (("one", found["A"]), ("two", found["B"]), ("three", found["operator"])):
            project.sink.wait_for_spans(counts[name])
        shown = admin.get(f"/team/{teams['one']}/callback").json()["data"]["callback_vars"]
        dump = db.raw_dump()
    # Stopping flushed delivery: a stray span would be here by now.
    for name, project in (("one", found["A"]), ("two", found["B"]), ("three", found["operator"])):
        project.assert_only(teams[name], counts[name])
        assert_mapped(project, name)
        assert {s["attributes"]["langsmith.metadata.team_alias"] for s in project.spans()} == {name}
    assert shown == {"langsmith_api_key": MASK, "langsmith_project": "A", "langsmith_base_url": found["A"].sink.url}
    assert found["A"].sink.url in dump, "the dump must see the callback row, or the next check proves nothing"
    assert found["A"].api_key not in dump and found["A"].api_key.encode() not in db.raw_bytes()


@pytest.mark.parametrize(("vars", "named"), [
    ({"langsmith_project": "p"}, "langsmith_api_key"),
    ({"langsmith_api_key": "k", "langsmith_host": "https://x"}, "langsmith_host"),
    ({"langsmith_api_key": "k", "langsmith_base_url": "ftp://x"}, "langsmith_base_url"),
    ({"langsmith_api_key": "k", "langsmith_base_url": "http://169.254.169.254"}, "langsmith_base_url"),
    ({"langsmith_api_key": "k", "langsmith_project": "\u00e9quipe"}, "langsmith_project"),
])
def test_bad_team_vars_are_a_400_naming_the_var(tmp_path: Path, vars: dict[str, Any], named: str) -> None:
    with (database("sqlite", tmp_path) as db,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env={"SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        team_id = admin.post("/team/new", json={}).json()["team_id"]
        error = error_of(admin.post(f"/team/{team_id}/callback",
                                    json={"callback_name": "langsmith", "callback_vars": vars}), 400)
        assert named in error["message"], error
        assert admin.get(f"/team/{team_id}/callback").json()["data"]["success_callbacks"] == []


@pytest.mark.parametrize("answer", [Reply(500, b"down"), Reply(429, b"slow", headers={"Retry-After": "30"})])
def test_a_failing_langsmith_breaks_no_request_and_no_other_destination(tmp_path: Path, answer: Reply) -> None:
    with (database("sqlite", tmp_path) as db, projects("broken") as found, OtlpSink() as other,
          running_gateway(quick_stop(gateway_settings(db)), data_dir=tmp_path, env={"SPANGATE_SALT_KEY": SALT_KEY}
                          ) as gw,
          admin_client(gw.base_url) as admin):
        found["broken"].sink.respond = lambda _req: answer
        team_id = admin.post("/team/new", json={}).json()["team_id"]
        for body in (found["broken"].callback_body(),
                     {"callback_name": "otlp", "callback_vars": {"otlp_endpoint": other.url + "/v1/traces"}}):
            assert admin.post(f"/team/{team_id}/callback", json=body).status_code == 200
        key = admin.post("/key/generate", json={"team_id": team_id}).json()["key"]
        send_chats(gw.base_url, key, 3, "t")  # every call answered (send_chats checks each reply)
        other.wait_for_spans(3)
        found["broken"].sink.wait_for(lambda reqs: len(reqs) >= 1)  # it was tried, and refused
    assert [s["name"] for s in other.spans()] == ["chat gpt-4"] * 3


def test_a_failed_call_is_an_errored_run(tmp_path: Path) -> None:
    with projects("ops") as found, FakeOpenAI() as upstream:
        upstream.script(Behaviour(status=429))
        config = {"model_list": [{"model_name": "gpt", "litellm_params": {
                      "model": "openai/gpt-4o-mini", "api_base": upstream.api_base, "api_key": "sk-up"}}],
                  "litellm_settings": {"success_callback": ["langsmith"], "failure_callback": ["langsmith"]}}
        with running_gateway(config, data_dir=tmp_path, env=found["ops"].env()) as gw, \
                openai_client(gw.base_url, "anything") as client:
            with pytest.raises(RateLimitError):
                client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "one"}])
            assert client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "two"}])
            found["ops"].sink.wait_for_spans(2)
    failed, ok = sorted(found["ops"].spans(), key=lambda s: s["status"]["code"])
    assert (failed["status"]["code"], ok["status"]["code"]) == ("ERROR", "OK")
    assert failed["attributes"]["error.type"] == "rate_limit_exceeded"
    (event,) = failed["events"]
    assert (event["name"], event["attributes"]["exception.type"]) == ("exception", "rate_limit_exceeded")
    assert ok["events"] == [] and ok["attributes"]["langsmith.span.kind"] == "llm"
