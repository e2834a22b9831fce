"""Per-team metrics over OTLP: the real gateway, two teams' calls with the official openai client, and a
loopback OTLP/HTTP metrics receiver read with opentelemetry-proto, as a Collector reads it.

``OTEL_METRICS_EXPORTER=otlp`` turns the export on; every point a team's call makes (calls and errors as
the duration histogram's count, tokens, cost, delivery outcomes) carries ``spangate.team.id``, and the
model label is a configured model group, never a client's invented name.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from app.config.settings import ConfigError
from app.server.telemetry import otlp_metric_readers
from contracts import semconv as sc
from tests.support.gateway import running_gateway
from tests.support.otlp import OtlpSink, attributes_dict
from tests.support.teams import SALT_KEY, admin_client, database, gateway_settings, loopback_client
from tests.support.upstream import FakeOpenAI

METRICS_PATH = "/v1/metrics"


def points(sink: OtlpSink) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    """Metric name -> (attributes, point) of the latest request that has it (cumulative: it holds all)."""
    latest: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for received in sink.trace_requests():
        request = ExportMetricsServiceRequest.FromString(received.body)
        found: dict[str, list[tuple[dict[str, Any], Any]]] = defaultdict(list)
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    for point in getattr(metric, kind).data_points:
                        found[metric.name].append((attributes_dict(point.attributes), point))
        latest.update(found)
    return latest


def calls(base_url: str, key: str, count: int, *, bad_model: bool = False) -> None:
    with OpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0, http_client=loopback_client()) as client:
        for i in range(count):
            assert client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": str(i)}])
        if bad_model:
            with pytest.raises(openai.NotFoundError):
                client.chat.completions.create(model="invented-model-x", messages=[{"role": "user", "content": "?"}])


def by_team(found: list[tuple[dict[str, Any], Any]], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = defaultdict(int)
    for attrs, point in found:
        out[attrs.get(sc.TEAM_ID, "")] += value(point)
    return dict(out)


def test_a_collector_gets_each_teams_calls_tokens_cost_and_deliveries(tmp_path: Path) -> None:
    with (database("sqlite", tmp_path) as db, FakeOpenAI() as upstream,
          OtlpSink(path_suffix=METRICS_PATH) as collector):
        settings = gateway_settings(db, success_callback=["file"], failure_callback=["file"])
        settings["model_list"] = [{"model_name": "gpt", "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_base": upstream.api_base, "api_key": "sk-up"}}]
        env = {"SPANGATE_SALT_KEY": SALT_KEY, "OTEL_METRICS_EXPORTER": "otlp", "OTEL_METRIC_EXPORT_INTERVAL": "100",
               "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=ops"}
        with running_gateway(settings, data_dir=tmp_path, env=env) as gw, admin_client(gw.base_url) as admin:
            teams = {alias: admin.post("/team/new", json={"team_alias": alias}).json()["team_id"]
                     for alias in ("search", "billing")}
            keys = {a: admin.post("/key/generate", json={"team_id": t}).json()["key"] for a, t in teams.items()}
            calls(gw.base_url, keys["search"], 3)
            calls(gw.base_url, keys["billing"], 2, bad_model=True)
            collector.wait_for(lambda _r: by_team(points(collector).get(sc.METRIC_INFERENCE_DURATION, []),
                                                  lambda p: p.count) == {teams["search"]: 3, teams["billing"]: 3})
        found = points(collector)  # stopping the gateway shut the reader down: its last export is in
    search, billing = teams["search"], teams["billing"]
    assert {r.headers["x-tenant"] for r in collector.trace_requests()} == {"ops"}
    duration = found[sc.METRIC_INFERENCE_DURATION]
    errors = by_team([(a, p) for a, p in duration if sc.ERROR_TYPE in a], lambda p: p.count)
    assert errors == {billing: 1}  # the invented model: an error of billing's, not a series of its own
    assert {a[sc.REQUEST_MODEL] for a, _ in duration} == {"gpt", "unknown"}
    tokens = by_team(found[sc.METRIC_INFERENCE_USAGE_INPUT_TOKENS], lambda p: p.as_int)
    assert tokens == {search: 3 * 11, billing: 2 * 11}  # the fake's prompt_tokens per call
    assert set(by_team(found["spangate.spend"], lambda p: p.as_double)) == {search, billing}
    delivered = by_team([(a, p) for a, p in found["spangate.delivery.spans"] if a.get("outcome") == "delivered"],
                        lambda p: p.as_int)
    assert delivered == {"": 6}  # the gateway-wide file destination: no team of its own, every call's span


@pytest.mark.parametrize(("env", "message"), [
    ({"OTEL_METRICS_EXPORTER": "otlp"}, "needs OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
    ({"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_METRIC_EXPORT_INTERVAL": "0"},
     "OTEL_METRIC_EXPORT_INTERVAL must be a positive"),
    ({"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_HEADERS": "bad"},
     "OTEL_EXPORTER_OTLP_METRICS_HEADERS"),
])
def test_a_bad_metrics_export_setting_stops_start_up_naming_it(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        otlp_metric_readers(env)


def test_no_otlp_metrics_export_unless_asked() -> None:
    assert otlp_metric_readers({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}) == []
    assert otlp_metric_readers({"OTEL_METRICS_EXPORTER": "prometheus"}) == []
