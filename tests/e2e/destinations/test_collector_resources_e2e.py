"""What a Collector tier receives from the gateway's ``otel`` destination: one resource per team.

A loopback OTLP receiver stands in for the Collector and reads the requests as a Collector does, with
opentelemetry-proto's own messages, at the ResourceSpans level (where the routing connector's
``context: resource`` and the load-balancing exporter's ``routing_key: resource`` look). Two teams call
through the real gateway with the official openai client; the upstream is a fake OpenAI, so each call
has its upstream HTTP child span too.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from openai import OpenAI
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from contracts import semconv as sc
from tests.support.gateway import running_gateway
from tests.support.otlp import OtlpSink, attributes_dict
from tests.support.teams import SALT_KEY, admin_client, database, gateway_settings, loopback_client
from tests.support.upstream import FakeOpenAI


def resource_spans(sink: OtlpSink) -> list[tuple[int, dict[str, Any], list[dict[str, Any]]]]:
    """(request number, resource attributes, the span attributes) per ResourceSpans, as a Collector sees them."""
    out = []
    for n, received in enumerate(sink.trace_requests()):
        request = ExportTraceServiceRequest.FromString(received.body)
        for group in request.resource_spans:
            spans = [attributes_dict(s.attributes) for scope in group.scope_spans for s in scope.spans]
            out.append((n, attributes_dict(group.resource.attributes), spans))
    return out


def calls(base_url: str, key: str, count: int) -> None:
    with OpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0, http_client=loopback_client()) as client:
        for i in range(count):
            assert client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": str(i)}])


def test_a_collector_sees_one_resource_per_team_with_the_team_id_and_alias(tmp_path: Path) -> None:
    with (database("sqlite", tmp_path) as db, FakeOpenAI() as upstream, OtlpSink() as collector):
        settings = gateway_settings(db, success_callback=["otel"])
        settings["model_list"] = [{"model_name": "gpt", "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_base": upstream.api_base, "api_key": "sk-up"}}]
        env = {"SPANGATE_SALT_KEY": SALT_KEY, "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url}
        with running_gateway(settings, data_dir=tmp_path, env=env) as gw, admin_client(gw.base_url) as admin:
            teams = {alias: admin.post("/team/new", json={"team_alias": alias}).json()["team_id"]
                     for alias in ("search", "billing")}
            for alias, count in (("search", 3), ("billing", 2)):
                calls(gw.base_url, admin.post("/key/generate", json={"team_id": teams[alias]}).json()["key"], count)
            collector.wait_for_spans(10)
    groups = resource_spans(collector)
    by_team: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, resource, spans in groups:
        assert resource[sc.SERVICE_NAME] == "spangate"  # beside service.*, not instead of it
        assert {s[sc.TEAM_ID] for s in spans} == {resource[sc.TEAM_ID]}  # a resource holds one team's spans
        by_team[resource[sc.TEAM_ID]] += spans
    assert {(r[sc.TEAM_ID], r[sc.TEAM_ALIAS]) for _, r, _ in groups} == {(t, a) for a, t in teams.items()}
    # Within one request a team has one resource, its gateway and upstream HTTP spans together.
    per_request = [(n, r[sc.TEAM_ID]) for n, r, _ in groups]
    assert len(per_request) == len(set(per_request))
    names = {team: sorted(sc.OPERATION_NAME in s for s in spans) for team, spans in by_team.items()}
    assert names == {teams["search"]: [False] * 3 + [True] * 3, teams["billing"]: [False] * 2 + [True] * 2}
