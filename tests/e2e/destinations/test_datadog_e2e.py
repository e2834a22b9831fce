"""The datadog destination end to end: real gateway, real store, official openai client, loopback sinks.

Globally (``success_callback``/``failure_callback: ["datadog"]`` with ``DD_*`` env, ``DD_BASE_URL``
aimed at a sink) the logs arrive as Datadog's intake receives them. Per team, ``dd_site`` can name
only Datadog's own sites, which a loopback test cannot reach (that is the point of the rule): the
team form is checked through the admin API (validation, masking, encryption at rest) and routing
(a team's own ``datadog`` entry replaces the global one), and its wire format in
tests/exporters/datadog_logs/test_exporter.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.teams.secrets import MASK
from tests.support.gateway import running_gateway
from tests.support.sinks import HttpSink, Reply, always
from tests.support.teams import (
    MODEL,
    SALT_KEY,
    admin_client,
    chat,
    database,
    error_of,
    gateway_settings,
    langfuse_projects,
    operator_env,
)
from tests.support.upstream import LEAKED_KEY, Behaviour, FakeOpenAI

DD_KEY = "dd-operator-api-key-0123456789"
TEAM_DD_KEY = "dd-team-api-key-abcdef987654"
UPSTREAM_KEY = "sk-upstream-provider-key-42"


def dd_env(sink: HttpSink) -> dict[str, str]:
    return {"DD_API_KEY": DD_KEY, "DD_BASE_URL": sink.url, "DD_ENV": "e2e", "DD_SERVICE": "llm-gw",
            "DD_SOURCE": "spangate", "SPANGATE_SALT_KEY": SALT_KEY}


def logs(sink: HttpSink) -> list[dict[str, Any]]:
    return [log for request in sink.requests for log in json.loads(request.body)]


def new_team_key(admin: Any, alias: str) -> tuple[str, str]:
    team = admin.post("/team/new", json={"team_alias": alias})
    assert team.status_code == 200, team.text
    team_id = team.json()["team_id"]
    key = admin.post("/key/generate", json={"team_id": team_id, "key_alias": f"{alias}-key"})
    assert key.status_code == 200, key.text
    return team_id, key.json()["key"]


def test_global_datadog_logs_successes_and_failures(tmp_path: Path) -> None:
    with (database("sqlite", tmp_path) as db, HttpSink(always(202)) as sink, FakeOpenAI() as upstream):
        config = gateway_settings(db, success_callback=["datadog"], failure_callback=["datadog"])
        config["model_list"].append({"model_name": "flaky", "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_base": upstream.api_base, "api_key": UPSTREAM_KEY}})
        upstream.script(Behaviour(status=429))
        with running_gateway(config, data_dir=tmp_path, env=dd_env(sink)) as gw, admin_client(gw.base_url) as admin:
            team_id, key = new_team_key(admin, "team-dd")
            assert chat(gw.base_url, key, MODEL, run="ok").status_code == 200
            assert chat(gw.base_url, key, "flaky", run="fails").status_code == 429
            sink.wait_for(lambda _requests: len(logs(sink)) >= 2)
    for request in sink.requests:
        assert (request.method, request.path) == ("POST", "/api/v2/logs")
        assert request.headers["dd-api-key"] == DD_KEY
        assert request.headers["content-encoding"] == "gzip"
        assert request.headers["content-type"] == "application/json"
        for secret in (UPSTREAM_KEY, LEAKED_KEY, key):
            assert secret not in request.body.decode()
    by_run = {log["spangate"]["metadata"]["run"]: log for log in logs(sink)}
    assert set(by_run) == {"ok", "fails"}
    ok, failed = by_run["ok"], by_run["fails"]
    assert (ok["status"], ok["service"], ok["ddsource"], ok["message"]) == ("info", "llm-gw", "spangate", "chat gpt-4")
    assert ok["ddtags"].startswith(f"env:e2e,team:{team_id},model:")
    assert ok["spangate"]["team"] == {"id": team_id, "alias": "team-dd"}
    assert ok["spangate"]["key"] == {"alias": "team-dd-key"}  # the alias, never the hash
    assert ok["gen_ai"]["usage"]["input_tokens"] > 0
    assert failed["status"] == "error"
    assert failed["ddtags"] == f"env:e2e,team:{team_id},model:flaky"
    assert failed["error"]["kind"] == failed["error"]["type"]
    assert failed["message"].startswith("chat flaky failed: ")


@pytest.mark.parametrize("reply", [Reply(500, b"down"), Reply(429, b"{}", {"X-RateLimit-Reset": "30"})])
def test_a_failing_datadog_breaks_no_request_and_no_other_destination(tmp_path: Path, reply: Reply) -> None:
    calls = 4
    with (database("sqlite", tmp_path) as db, HttpSink(lambda _req: reply) as sink,
          langfuse_projects("operator") as projects):
        env = {**dd_env(sink), **operator_env(projects["operator"])}
        config = gateway_settings(db, success_callback=["datadog", "langfuse"])
        # Datadog never accepts, so stopping waits out the flush timeout: keep it short.
        config["spangate_settings"]["shutdown_flush_seconds"] = 0.5
        with running_gateway(config, data_dir=tmp_path, env=env) as gw, admin_client(gw.base_url) as admin:
            _team_id, key = new_team_key(admin, "team-isolated")
            for i in range(calls):
                assert chat(gw.base_url, key, MODEL, run=str(i)).status_code == 200
            projects["operator"].wait_for(lambda spans: len(spans) >= calls)
            sink.wait_for(lambda requests: len(requests) >= 1)
    assert len(projects["operator"].spans()) == calls
    assert all(r.headers["dd-api-key"] == DD_KEY for r in sink.requests)


@pytest.mark.parametrize(("vars", "named"), [
    ({"dd_site": "datadoghq.eu"}, "dd_api_key"),
    ({"dd_api_key": TEAM_DD_KEY, "dd_site": "evil.example"}, "dd_site"),
    ({"dd_api_key": TEAM_DD_KEY, "dd_base_url": "http://127.0.0.1:9"}, "dd_base_url"),
    ({"dd_api_key": TEAM_DD_KEY, "dd_region": "eu"}, "dd_region"),
])
def test_team_callback_vars_are_validated(tmp_path: Path, vars: dict[str, str], named: str) -> None:
    with (database("sqlite", tmp_path) as db,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env={"SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        team_id, _key = new_team_key(admin, "team-bad-vars")
        body = {"callback_name": "datadog", "callback_type": "success", "callback_vars": vars}
        error = error_of(admin.post(f"/team/{team_id}/callback", json=body), 400)
        assert error["param"] == "callback_vars" and named in error["message"], error
        assert TEAM_DD_KEY not in json.dumps(error)
        assert admin.get(f"/team/{team_id}/callback").json()["data"]["callback_vars"] == {}


def test_team_datadog_is_masked_encrypted_and_replaces_the_global_one(tmp_path: Path) -> None:
    with database("sqlite", tmp_path) as db, HttpSink(always(202)) as sink:
        config = gateway_settings(db, success_callback=["datadog"])
        with running_gateway(config, data_dir=tmp_path, env=dd_env(sink)) as gw, admin_client(gw.base_url) as admin:
            own_team, own_key = new_team_key(admin, "team-own-dd")
            other_team, other_key = new_team_key(admin, "team-global-dd")
            # failure-only, so no success span of this team is ever sent towards Datadog's real site
            body = {"callback_name": "datadog", "callback_type": "failure",
                    "callback_vars": {"dd_api_key": TEAM_DD_KEY, "dd_site": "datadoghq.eu"}}
            posted = admin.post(f"/team/{own_team}/callback", json=body)
            assert posted.status_code == 200, posted.text
            shown = admin.get(f"/team/{own_team}/callback")
            assert shown.json()["data"] == {"team_id": own_team, "success_callbacks": [],
                                            "failure_callbacks": ["datadog"],
                                            "callback_vars": {"dd_site": "datadoghq.eu", "dd_api_key": MASK}}
            for response in (posted, shown):
                assert TEAM_DD_KEY not in response.text
            for key, run in ((own_key, "own"), (other_key, "other")):
                assert chat(gw.base_url, key, MODEL, run=run).status_code == 200
            sink.wait_for(lambda _requests: len(logs(sink)) >= 1)
    # the gateway has stopped, so delivery is flushed: a misrouted log would be here by now
    assert [log["spangate"]["team"]["id"] for log in logs(sink)] == [other_team]
    assert "datadoghq.eu" in db.raw_dump(), "the dump must see the callback row, or the next check proves nothing"
    assert TEAM_DD_KEY not in db.raw_dump() and TEAM_DD_KEY.encode() not in db.raw_bytes()
