"""``otlp`` end to end: teams send their calls to their own OTLP backends, upstream child spans included.

A real fake OpenAI upstream (so calls make the upstream HTTP child span), the official openai client,
loopback OTLP sinks standing in for Phoenix (protobuf, a project resource attribute, a bearer token)
and for a JSON-speaking backend. No gateway-wide trace destination is configured: the child spans
exist only because a team asked for them.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from app.api.admin import MASK
from contracts import semconv as sc
from tests.support.gateway import running_gateway
from tests.support.otlp import OtlpSink
from tests.support.teams import SALT_KEY, admin_client, database, error_of, gateway_settings, loopback_client
from tests.support.upstream import FakeOpenAI

TEAM = sc.TEAM_ID
TOKEN = "phoenix-token-5b2e"
PHOENIX_PATH = "/v1/traces"
JSON_PATH = "/api/v1/private/otel/v1/traces"


def upstream_models(upstream: FakeOpenAI) -> list[dict[str, Any]]:
    return [{"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": upstream.api_base,
                                                     "api_key": "sk-up"}}]


def send(base_url: str, key: str, count: int) -> None:
    with OpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0, http_client=loopback_client()) as client:
        for i in range(count):
            assert client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": str(i)}])


def json_spans(sink: OtlpSink) -> list[dict[str, Any]]:
    """Spans of OTLP/JSON requests, attributes flattened to ``{key: value}``, resource folded in."""
    out = []
    for request in sink.trace_requests():
        assert request.headers["content-type"] == "application/json"
        for resource_spans in json.loads(request.body)["resourceSpans"]:
            resource = _flat(resource_spans["resource"]["attributes"])
            for scope_spans in resource_spans["scopeSpans"]:
                out += [{**s, "attributes": _flat(s["attributes"]), "resource": resource} for s in scope_spans["spans"]]
    return out


def _flat(attributes: list[dict[str, Any]]) -> dict[str, Any]:
    return {a["key"]: next(iter(a["value"].values())) for a in attributes}


def assert_call_trees(spans: list[dict[str, Any]], team_id: str, calls: int, id_key: str, parent_key: str) -> None:
    """``calls`` gateway spans of ``team_id``, each with its upstream HTTP child, and nothing else."""
    assert Counter(s["attributes"].get(TEAM) for s in spans) == {team_id: 2 * calls}
    gateway = {s[id_key]: s for s in spans if s["name"] == "chat gpt"}
    children = [s for s in spans if s["name"] != "chat gpt"]
    assert len(gateway) == len(children) == calls
    assert {c[parent_key] for c in children} == set(gateway)


def test_each_team_gets_its_own_call_trees_and_no_other_teams(tmp_path: Path) -> None:
    with (database("sqlite", tmp_path) as db, FakeOpenAI() as upstream, OtlpSink(path_suffix=PHOENIX_PATH) as phoenix,
          OtlpSink(path_suffix=JSON_PATH) as opik,
          running_gateway({**gateway_settings(db), "model_list": upstream_models(upstream)}, data_dir=tmp_path,
                          env={"SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        teams = {name: admin.post("/team/new", json={"team_alias": name}).json()["team_id"] for name in "abc"}
        bodies = {
            "a": {"otlp_endpoint": phoenix.url + PHOENIX_PATH, "otlp_headers": f"Authorization=Bearer%20{TOKEN}",
                  "otlp_resource_attributes": "openinference.project.name=team-a"},
            "b": {"otlp_endpoint": opik.url + JSON_PATH, "otlp_protocol": "http/json",
                  "otlp_headers": {"projectName": "team-b"}},
        }
        for name, vars in bodies.items():
            reply = admin.post(f"/team/{teams[name]}/callback", json={"callback_name": "otlp", "callback_vars": vars})
            assert reply.status_code == 200, reply.text
        shown = admin.get(f"/team/{teams['a']}/callback").json()["data"]["callback_vars"]
        keys = {name: admin.post("/key/generate", json={"team_id": t}).json()["key"] for name, t in teams.items()}
        counts = {"a": 3, "b": 2, "c": 2}
        for name, count in counts.items():
            send(gw.base_url, keys[name], count)
        phoenix.wait_for_spans(6)
        opik.wait_for(lambda _reqs: len(json_spans(opik)) >= 4)
        dump = db.raw_dump()
    # Stopping flushed delivery: a stray span would be here by now.
    a_spans = phoenix.spans()
    assert_call_trees(a_spans, teams["a"], 3, "span_id", "parent_span_id")
    assert {r.headers["authorization"] for r in phoenix.trace_requests()} == {f"Bearer {TOKEN}"}
    assert {s["resource"]["openinference.project.name"] for s in a_spans} == {"team-a"}
    assert {s["resource"]["service.name"] for s in a_spans} == {"spangate"}
    b_spans = json_spans(opik)
    assert_call_trees(b_spans, teams["b"], 2, "spanId", "parentSpanId")
    assert {r.headers["projectname"] for r in opik.trace_requests()} == {"team-b"}
    assert shown == {"otlp_endpoint": phoenix.url + PHOENIX_PATH, "otlp_headers": MASK,
                     "otlp_resource_attributes": "openinference.project.name=team-a"}
    assert phoenix.url in dump, "the dump must see the callback row, or the next check proves nothing"
    assert TOKEN not in dump and TOKEN.encode() not in db.raw_bytes()
    # Each traced call told the upstream its child span; team c's calls still carry a traceparent.
    parents = Counter(r.headers["traceparent"].split("-")[2] for r in upstream.requests)
    a_children = {s["span_id"] for s in a_spans if s["name"] == "POST"}
    b_children = {s["spanId"] for s in b_spans if s["name"] == "POST"}
    assert (len(parents), sum(parents.values())) == (7, 7)
    assert (len(a_children & set(parents)), len(b_children & set(parents))) == (3, 2)


def test_global_form_from_its_settings_section(tmp_path: Path) -> None:
    with FakeOpenAI() as upstream, OtlpSink() as collector:
        settings = {"model_list": upstream_models(upstream), "litellm_settings": {
            "success_callback": ["otlp"], "otlp_callback_params": {
                "otlp_endpoint": collector.url + "/v1/traces", "otlp_headers": "os.environ/OTLP_TEAM_HEADERS"}}}
        with running_gateway(settings, data_dir=tmp_path, env={"OTLP_TEAM_HEADERS": "x-honeycomb-team=hc-key"}) as gw:
            send(gw.base_url, "no-master-key-no-auth", 2)
            collector.wait_for_spans(4)
    spans = collector.spans()
    assert sorted(s["name"] for s in spans) == ["POST", "POST", "chat gpt", "chat gpt"]
    assert {r.headers["x-honeycomb-team"] for r in collector.trace_requests()} == {"hc-key"}


@pytest.mark.parametrize(("vars", "named"), [
    ({"otlp_headers": "a=b"}, "otlp_endpoint"),
    ({"otlp_endpoint": "http://127.0.0.1:9/v1/traces", "otlp_protocol": "grpc"}, "otlp_protocol"),
    ({"otlp_endpoint": "http://127.0.0.1:9/v1/traces", "otlp_token": "x"}, "otlp_token"),
    ({"otlp_endpoint": "http://169.254.169.254/v1/traces"}, "otlp_endpoint"),
    ({"otlp_endpoint": "http://127.0.0.1:9/v1/traces", "otlp_resource_attributes": "nokey"},
     "otlp_resource_attributes"),
])
def test_bad_team_vars_are_a_400_naming_the_var(tmp_path: Path, vars: dict[str, Any], named: str) -> None:
    with (database("sqlite", tmp_path) as db,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env={"SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        team_id = admin.post("/team/new", json={}).json()["team_id"]
        error = error_of(admin.post(f"/team/{team_id}/callback", json={"callback_name": "otlp", "callback_vars": vars}),
                         400)
        assert named in error["message"], error
