"""The GenAI conventions the gateway follows, as a collector and a Prometheus scrape see them.

The official openai client calls the real gateway; a fake OpenAI upstream reports cached, cache-written
and reasoning tokens; the ``otel`` destination sends to a loopback OTLP receiver, read with
opentelemetry-proto. The names are those of semantic-conventions-genai (``contracts/semconv.py``):
``cache_write`` (not v1.41's ``cache_creation``), the scope's schema URL, the ``gen_ai.client.inference.*``
metrics, and the v1.41 metrics only while ``legacy_genai_metrics`` is on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from contracts import semconv as sc
from tests.e2e.gateway.test_gateway_e2e import openai_model
from tests.support.gateway import running_gateway
from tests.support.otlp import OtlpSink, attributes_dict
from tests.support.upstream import Behaviour, FakeOpenAI

USAGE = {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49,
         "prompt_tokens_details": {"cached_tokens": 30, "cache_creation_tokens": 6},
         "completion_tokens_details": {"reasoning_tokens": 4}}
ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024-07-18",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
          "usage": USAGE}


def gateway_spans(sink: OtlpSink) -> list[tuple[str, dict[str, Any]]]:
    """(scope schema URL, attributes) of each gateway span the receiver got."""
    out = []
    for received in sink.trace_requests():
        for group in ExportTraceServiceRequest.FromString(received.body).resource_spans:
            for scope in group.scope_spans:
                out += [(scope.schema_url, attributes_dict(s.attributes)) for s in scope.spans
                        if scope.scope.name == "spangate"]
    return out


def calls(base_url: str) -> str:
    """One plain chat, one stream; then the gateway's /metrics text."""
    with OpenAI(base_url=base_url + "/v1", api_key="x", max_retries=0) as client:
        assert client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "a"}])
        stream = client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "b"}],
                                                stream=True, stream_options={"include_usage": True})
        assert [chunk for chunk in stream]
    return httpx.get(base_url + "/metrics").text


@pytest.mark.parametrize("legacy", [True, False])
def test_spans_and_metrics_carry_the_current_genai_names(tmp_path: Path, legacy: bool) -> None:
    with FakeOpenAI() as upstream, OtlpSink() as collector:
        upstream.script(Behaviour(body=json.dumps(ANSWER).encode()))
        config = {"model_list": [openai_model("gpt", upstream)], "litellm_settings": {"success_callback": ["otel"]},
                  "spangate_settings": {"metrics_auth": "none", "legacy_genai_metrics": legacy}}
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url}
        with running_gateway(config, data_dir=tmp_path, env=env) as gw:
            metrics = calls(gw.base_url)
            collector.wait_for(lambda _reqs: len(gateway_spans(collector)) >= 2)
    (plain_url, plain), (stream_url, stream) = gateway_spans(collector)
    assert plain_url == stream_url == sc.SCHEMA_URL
    assert {k: plain.get(k) for k in (sc.USAGE_CACHE_READ_INPUT_TOKENS, sc.USAGE_CACHE_WRITE_INPUT_TOKENS,
                                      sc.USAGE_REASONING_OUTPUT_TOKENS)} == {
        sc.USAGE_CACHE_READ_INPUT_TOKENS: 30, sc.USAGE_CACHE_WRITE_INPUT_TOKENS: 6, sc.USAGE_REASONING_OUTPUT_TOKENS: 4}
    assert sc.V141_USAGE_CACHE_CREATION_INPUT_TOKENS not in plain
    assert sc.REQUEST_STREAM not in plain
    assert stream[sc.REQUEST_STREAM] is True and stream[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert stream[sc.USAGE_REASONING_OUTPUT_TOKENS] == 3  # the fake's own usage, from the stream's last chunk
    for name in ("gen_ai_client_inference_duration_seconds_count",
                 "gen_ai_client_inference_time_to_first_chunk_seconds",
                 'gen_ai_client_inference_usage_cache_write_input_tokens_total{gen_ai_operation_name="chat"',
                 "gen_ai_client_inference_usage_reasoning_output_tokens_total",
                 "gen_ai_client_inference_operation_input_tokens_bucket", 'gen_ai_token_modality="unknown"'):
        assert name in metrics
    legacy_names = ("gen_ai_client_token_usage_bucket", "gen_ai_client_operation_duration_seconds",
                    "gen_ai_client_operation_time_to_first_chunk_seconds")
    assert [name in metrics for name in legacy_names] == [legacy] * 3
