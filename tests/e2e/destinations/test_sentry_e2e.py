"""The Sentry destination through the real gateway: global ``failure_callback: ["sentry"]`` with SENTRY_DSN, and a
team's own ``sentry_dsn`` set through ``POST /team/{id}/callback``. Calls go through the official openai client to a
fake upstream scripted to fail; each Sentry stand-in is a loopback project with its own DSN key."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import openai
import pytest

from app.api.admin import MASK
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.sentry import SentryProject, parse_envelope
from tests.support.sinks import Reply, always
from tests.support.teams import (
    SALT_KEY,
    Database,
    admin_client,
    chat,
    database,
    error_of,
    gateway_settings,
    mock_models,
    new_key,
    ok,
    openai_client,
)
from tests.support.upstream import LEAKED_KEY, Behaviour, FakeOpenAI

UPSTREAM_MODEL = "gpt-up"
FILE_TAG = "spangate.metadata.test"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def projects() -> Iterator[dict[str, SentryProject]]:
    busy = {429: Reply(429, b"", {"Retry-After": "1"}), 500: Reply(500, b"down")}
    with ExitStack() as stack:
        made = {"operator": SentryProject(public_key=f"op{secrets.token_hex(8)}"),
                "team": SentryProject(public_key=f"team{secrets.token_hex(8)}"),
                **{status: SentryProject(lambda _r, reply=reply: reply) for status, reply in busy.items()}}
        for project in made.values():
            stack.enter_context(project)
        yield made


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with database("sqlite", tmp_path_factory.mktemp("store")) as db:
        yield db


@pytest.fixture(scope="module")
def gw(upstream: FakeOpenAI, projects: dict[str, SentryProject], store: Database,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    config = gateway_settings(store, success_callback=["file"], failure_callback=["sentry", "file"])
    config["model_list"] = [*mock_models(), {"model_name": UPSTREAM_MODEL, "litellm_params": {
        "model": "openai/gpt-4o-mini", "api_base": upstream.api_base, "api_key": "sk-up"}}]
    env = {"SENTRY_DSN": projects["operator"].dsn, "SENTRY_ENVIRONMENT": "e2e", "SPANGATE_SALT_KEY": SALT_KEY}
    with running_gateway(config, data_dir=tmp_path_factory.mktemp("gw"), env=env) as running:
        yield running


@pytest.fixture
def admin(gw: RunningGateway) -> Iterator[httpx.Client]:
    with admin_client(gw.base_url) as client:
        yield client




def fail_one_call(gw: RunningGateway, upstream: FakeOpenAI, key: str, tag: str) -> None:
    upstream.script(Behaviour(status=429))
    with openai_client(gw.base_url, key) as client, pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=UPSTREAM_MODEL, messages=[{"role": "user", "content": "hi"}],
                                       extra_body={"metadata": {"test": tag}})


def tagged(project: SentryProject, tag: str, count: int = 1) -> list[dict[str, Any]]:
    return project.wait_for_events(count, lambda e: e["contexts"]["spangate"].get("metadata", {}).get("test") == tag)


def test_global_dsn_a_failed_call_is_one_event_and_a_success_none(gw, upstream, admin, projects):
    key = new_key(admin, key_alias="ci-key")
    with openai_client(gw.base_url, key) as client:
        client.chat.completions.create(model=UPSTREAM_MODEL, messages=[{"role": "user", "content": "hi"}],
                                       extra_body={"metadata": {"test": "global-ok"}})
    fail_one_call(gw, upstream, key, "global")
    (event,) = tagged(projects["operator"], "global")
    (span,) = gw.wait_for_spans(1, where=lambda s: s["attributes"].get(FILE_TAG) == "global")
    assert event["exception"]["values"][0]["type"] == span["attributes"]["error.type"]
    assert event["tags"] | {"error_type": None} == {"model": UPSTREAM_MODEL, "operation": "chat", "provider": "openai",
                                                    "key_alias": "ci-key", "http_status": "429", "error_type": None}
    assert event["contexts"]["trace"]["trace_id"] == span["trace_id"]
    assert event["contexts"]["trace"]["span_id"] == span["span_id"]
    assert (event["environment"], event["level"]) == ("e2e", "error")
    assert LEAKED_KEY not in repr(event) and key not in repr(event)
    projects["operator"].assert_wire_format()
    gw.wait_for_spans(1, where=lambda s: s["attributes"].get(FILE_TAG) == "global-ok")
    assert not [e for e in projects["operator"].events()
                if e["contexts"]["spangate"].get("metadata", {}).get("test") == "global-ok"]


def test_team_dsn_is_masked_encrypted_and_gets_only_its_teams_failures(gw, upstream, admin, projects, store):
    team_id = ok(admin.post("/team/new", json={"team_alias": "payments"}))["team_id"]
    project = projects["team"]
    body = {"callback_name": "sentry", "callback_type": "failure", "callback_vars": {"sentry_dsn": project.dsn}}
    posted = ok(admin.post(f"/team/{team_id}/callback", json=body))
    shown = ok(admin.get(f"/team/{team_id}/callback"))["data"]
    assert shown == {"team_id": team_id, "success_callbacks": [], "failure_callbacks": ["sentry"],
                     "callback_vars": {"sentry_dsn": MASK}}
    assert project.public_key not in repr(posted)
    dump = store.raw_dump()
    assert team_id in dump, "the dump must see the callback row, or the next check proves nothing"
    assert project.public_key not in dump and project.public_key.encode() not in store.raw_bytes()

    fail_one_call(gw, upstream, new_key(admin, team_id=team_id, key_alias="pay-key"), "team")
    (event,) = tagged(project, "team")
    assert (event["tags"]["team_id"], event["tags"]["team_alias"], event["tags"]["key_alias"]) == (
        team_id, "payments", "pay-key")
    project.assert_wire_format()
    gw.wait_for_spans(1, where=lambda s: s["attributes"].get(FILE_TAG) == "team")
    assert not [e for e in projects["operator"].events() if e["tags"].get("team_id") == team_id]


@pytest.mark.parametrize(("vars", "named"), [
    ({}, "sentry_dsn"),
    ({"sentry_dsn": "http://k@127.0.0.1:9/1", "sentry_rate": 1}, "sentry_rate"),
    ({"sentry_dsn": "http://127.0.0.1:9/1"}, "sentry_dsn has no public key"),
    ({"sentry_dsn": "http://k@169.254.169.254/1"}, "callback_vars.sentry_dsn: address not allowed"),
])
def test_bad_vars_are_a_400_naming_the_var(admin, vars, named):
    team_id = ok(admin.post("/team/new", json={}))["team_id"]
    body = {"callback_name": "sentry", "callback_type": "failure", "callback_vars": vars}
    error = error_of(admin.post(f"/team/{team_id}/callback", json=body), 400)
    assert named in error["message"], error
    assert ok(admin.get(f"/team/{team_id}/callback"))["data"]["failure_callbacks"] == []


@pytest.mark.parametrize("status", [429, 500])
def test_a_failing_sentry_breaks_no_request_and_no_other_destination(gw, upstream, admin, projects, status):
    team_id = ok(admin.post("/team/new", json={}))["team_id"]
    body = {"callback_name": "sentry", "callback_type": "failure",
            "callback_vars": {"sentry_dsn": projects[status].dsn}}
    ok(admin.post(f"/team/{team_id}/callback", json=body))
    key = new_key(admin, team_id=team_id)
    tag = f"busy-{status}"
    fail_one_call(gw, upstream, key, tag)
    assert chat(gw.base_url, key, model=UPSTREAM_MODEL, test=tag + "-ok").status_code == 200
    projects[status].wait_for(lambda reqs: len(reqs) >= 1)
    spans = gw.wait_for_spans(2, where=lambda s: s["attributes"].get(FILE_TAG, "").startswith(tag))
    assert {s["attributes"][FILE_TAG] for s in spans} == {tag, tag + "-ok"}
    projects[status].respond = always()  # Sentry is back: the retried event lands, and shutdown has nothing to wait for
    sent = projects[status].wait_for(lambda reqs: len(reqs) >= 2)  # the refused envelope, then its retry
    (event,) = {e["event_id"]: e for e in projects[status].events()}.values()
    assert {parse_envelope(r.body).headers["event_id"] for r in sent} == {event["event_id"]}  # Sentry dedupes
    assert event["contexts"]["spangate"]["metadata"]["test"] == tag


def test_the_callback_test_route_reaches_the_teams_sentry(admin, projects):
    team_id = ok(admin.post("/team/new", json={}))["team_id"]
    project = projects["team"]
    body = {"callback_name": "sentry", "callback_type": "failure", "callback_vars": {"sentry_dsn": project.dsn}}
    ok(admin.post(f"/team/{team_id}/callback", json=body))
    tested = ok(admin.post(f"/team/{team_id}/callback/test"))
    assert tested["status"] == "success" and tested["results"][0]["callback_name"] == "sentry"
    (event,) = project.wait_for_events(1, lambda e: e["tags"].get("team_id") == team_id)
    assert (event["level"], event["message"]) == ("info", {"formatted": "spangate callback test: chat "
                                                                        "spangate-callback-test"})
