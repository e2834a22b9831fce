"""The gateway's meter provider: default aggregations (the advisory buckets included), no exemplar state."""

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from app.api.prometheus import build_meter_provider, render_prometheus
from app.calls.metrics import _DURATION_BUCKETS, _TOKEN_BUCKETS, GenAIMetrics
from contracts import semconv as sc


def test_histograms_keep_their_advisory_buckets_and_no_exemplars() -> None:
    provider, reader = build_meter_provider(Resource({}))
    metrics = GenAIMetrics(provider.get_meter("t"))
    tracer = TracerProvider().get_tracer("t")
    labels = {sc.OPERATION_NAME: "chat", sc.TEAM_ID: "team-1"}
    with tracer.start_as_current_span("call"):  # a sampled span: the SDK's default would keep an exemplar
        metrics.record(labels, {sc.USAGE_INPUT_TOKENS: 10, sc.USAGE_OUTPUT_TOKENS: 5, sc.USAGE_COST: 0.5}, 0.05, None)
    data = reader.get_metrics_data()
    points = {m.name: m.data.data_points for rm in data.resource_metrics for sm in rm.scope_metrics
              for m in sm.metrics}
    assert [p.explicit_bounds for p in points[sc.METRIC_OPERATION_DURATION]] == [_DURATION_BUCKETS]
    assert [tuple(p.explicit_bounds) for p in points[sc.METRIC_TOKEN_USAGE]] == [_TOKEN_BUCKETS] * 2
    assert [p.value for p in points["spangate.spend"]] == [0.5]
    assert all(p.exemplars == [] for ps in points.values() for p in ps)
    text = render_prometheus(data)
    assert 'gen_ai_client_operation_duration_seconds_bucket{gen_ai_operation_name="chat",le="0.08",' \
           'spangate_team_id="team-1"} 1' in text
