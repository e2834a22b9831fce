"""The gateway's meter provider and the GenAI client metrics: current names, the v1.41 ones behind a switch."""

from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from app.api.prometheus import build_meter_provider, render_prometheus
from app.calls.metrics import _DURATION_BUCKETS, _TOKEN_BUCKETS, GenAIMetrics
from contracts import semconv as sc

CHAT = {sc.OPERATION_NAME: "chat", sc.TEAM_ID: "team-1"}
USAGE = {sc.USAGE_INPUT_TOKENS: 10, sc.USAGE_OUTPUT_TOKENS: 5, sc.USAGE_CACHE_READ_INPUT_TOKENS: 4,
         sc.USAGE_CACHE_WRITE_INPUT_TOKENS: 2, sc.USAGE_REASONING_OUTPUT_TOKENS: 3, sc.USAGE_COST: 0.5}


def recorded(legacy: bool, labels: dict[str, Any], attrs: dict[str, Any], ttfc: float | None = None
             ) -> tuple[dict[str, list[Any]], InMemoryMetricReader]:
    provider, reader = build_meter_provider(Resource({}))
    GenAIMetrics(provider.get_meter("t"), legacy=legacy).record(labels, attrs, 0.05, ttfc)
    data = reader.get_metrics_data()
    points = {m.name: list(m.data.data_points) for rm in data.resource_metrics for sm in rm.scope_metrics
              for m in sm.metrics}
    return points, reader


def test_histograms_keep_their_advisory_buckets_and_no_exemplars() -> None:
    provider, reader = build_meter_provider(Resource({}))
    metrics = GenAIMetrics(provider.get_meter("t"))
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("call"):  # a sampled span: the SDK's default would keep an exemplar
        metrics.record(CHAT, USAGE, 0.05, None)
    data = reader.get_metrics_data()
    points = {m.name: m.data.data_points for rm in data.resource_metrics for sm in rm.scope_metrics
              for m in sm.metrics}
    assert [p.explicit_bounds for p in points[sc.METRIC_INFERENCE_DURATION]] == [_DURATION_BUCKETS]
    assert [tuple(p.explicit_bounds) for p in points[sc.METRIC_INFERENCE_OPERATION_INPUT_TOKENS]] == [_TOKEN_BUCKETS]
    assert [tuple(p.explicit_bounds) for p in points[sc.LEGACY_METRIC_TOKEN_USAGE]] == [_TOKEN_BUCKETS] * 2
    assert [p.value for p in points["spangate.spend"]] == [0.5]
    assert all(p.exemplars == [] for ps in points.values() for p in ps)
    text = render_prometheus(data)
    assert 'gen_ai_client_inference_duration_seconds_bucket{gen_ai_operation_name="chat",le="0.08",' \
           'spangate_team_id="team-1"} 1' in text


def test_an_inference_call_records_the_current_metrics_and_usage_counters_by_category() -> None:
    points, _ = recorded(False, CHAT, USAGE, ttfc=0.2)
    usage = {name: [(p.value, dict(p.attributes)) for p in points[name]] for name in points
             if name.startswith("gen_ai.client.inference.usage.")}
    unknown = {**CHAT, sc.TOKEN_MODALITY: sc.TOKEN_MODALITY_UNKNOWN}
    assert usage == {sc.METRIC_INFERENCE_USAGE_INPUT_TOKENS: [(10, unknown)],
                     sc.METRIC_INFERENCE_USAGE_OUTPUT_TOKENS: [(5, unknown)],
                     sc.METRIC_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS: [(4, unknown)],
                     sc.METRIC_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS: [(2, unknown)],
                     sc.METRIC_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS: [(3, unknown)]}
    assert [(p.sum, p.count) for p in points[sc.METRIC_INFERENCE_OPERATION_OUTPUT_TOKENS]] == [(5, 1)]
    assert [p.sum for p in points[sc.METRIC_INFERENCE_TIME_TO_FIRST_CHUNK]] == [0.2]
    assert not {sc.LEGACY_METRIC_TOKEN_USAGE, sc.LEGACY_METRIC_OPERATION_DURATION,
                sc.LEGACY_METRIC_TIME_TO_FIRST_CHUNK, sc.METRIC_EMBEDDINGS_DURATION} & set(points)


def test_legacy_metrics_are_the_v141_names_with_the_token_type() -> None:
    points, _ = recorded(True, CHAT, USAGE, ttfc=0.2)
    tokens = sorted((p.sum, p.attributes[sc.LEGACY_TOKEN_TYPE]) for p in points[sc.LEGACY_METRIC_TOKEN_USAGE])
    assert tokens == [(5, "output"), (10, "input")]
    assert [p.count for p in points[sc.LEGACY_METRIC_OPERATION_DURATION]] == [1]
    assert [p.sum for p in points[sc.LEGACY_METRIC_TIME_TO_FIRST_CHUNK]] == [0.2]
    assert [p.count for p in points[sc.METRIC_INFERENCE_DURATION]] == [1]  # and the current ones beside them


def test_an_embeddings_call_records_the_embeddings_metrics_not_the_inference_ones() -> None:
    points, _ = recorded(False, {sc.OPERATION_NAME: sc.OP_EMBEDDINGS}, {sc.USAGE_INPUT_TOKENS: 7})
    assert [p.sum for p in points[sc.METRIC_EMBEDDINGS_OPERATION_INPUT_TOKENS]] == [7]
    assert [p.count for p in points[sc.METRIC_EMBEDDINGS_DURATION]] == [1]
    assert not [name for name in points if name.startswith("gen_ai.client.inference.")]
