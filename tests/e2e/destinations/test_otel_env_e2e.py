"""The standard OpenTelemetry settings through the real gateway: the official openai client in front,
a fake OpenAI upstream and loopback OTLP sinks behind.

What an operator sets (service name, resource, the ``_TRACES_`` endpoint, compression, Traceloop's key,
``OTEL_SDK_DISABLED``) and what a client sends (its user and session) must show up, or not, where a
collector looks for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from contracts import semconv as sc
from tests.e2e.gateway.test_gateway_e2e import TAG, openai_model, sent, tagged
from tests.support.gateway import running_gateway
from tests.support.otlp import OtlpSink
from tests.support.upstream import FakeOpenAI, closed_port


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def chat(openai: OpenAI, tag: str, **metadata: str) -> None:
    answer = openai.chat.completions.create(model="gpt", messages=[{"role": "user", "content": tag}],
                                            extra_body=tagged(tag, **metadata))
    assert answer.choices[0].message.content


def test_the_operators_resource_and_the_callers_ids_reach_the_collector(tmp_path: Path, upstream: FakeOpenAI) -> None:
    config = {"model_list": [openai_model("gpt", upstream)], "litellm_settings": {"success_callback": ["otel"]}}
    with OtlpSink(path_suffix="/traces-only") as sink:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed_port()}",  # loses to the _TRACES_ form
               "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{sink.url}/traces-only",
               "OTEL_EXPORTER_OTLP_COMPRESSION": "none",
               "OTEL_SERVICE_NAME": "billing-gateway",
               "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=staging,service.name=ignored"}
        with running_gateway(config, data_dir=tmp_path, env=env) as gateway, \
                OpenAI(base_url=gateway.openai_base_url, api_key="x", max_retries=0) as openai:
            chat(openai, "ids", trace_user_id="user-7", session_id="conv-42")
            spans = sink.wait_for_spans(2)
    assert {(s["resource"][sc.SERVICE_NAME], s["resource"]["deployment.environment"]) for s in spans} == {
        ("billing-gateway", "staging")}
    requests = sink.trace_requests()
    assert all("content-encoding" not in r.headers and r.raw_body == r.body for r in requests)
    [llm] = [s for s in spans if s["name"] == "chat gpt"]
    assert llm["attributes"][TAG] == "ids"
    assert {k: llm["attributes"][k] for k in (sc.USER_ID, sc.SESSION_ID, sc.CONVERSATION_ID)} == {
        sc.USER_ID: "user-7", sc.SESSION_ID: "conv-42", sc.CONVERSATION_ID: "conv-42"}


def test_traceloop_sends_its_api_key_as_a_bearer_token(tmp_path: Path, upstream: FakeOpenAI) -> None:
    config = {"model_list": [openai_model("gpt", upstream)], "litellm_settings": {"success_callback": ["traceloop"]}}
    with OtlpSink() as sink:
        env = {"TRACELOOP_API_KEY": "tl-secret-1", "TRACELOOP_BASE_URL": sink.url}
        with running_gateway(config, data_dir=tmp_path, env=env) as gateway, \
                OpenAI(base_url=gateway.openai_base_url, api_key="x", max_retries=0) as openai:
            chat(openai, "traceloop")
            spans = sink.wait_for_spans(2)
    assert {r.path for r in sink.trace_requests()} == {"/v1/traces"}
    assert {r.headers.get("authorization") for r in sink.trace_requests()} == {"Bearer tl-secret-1"}
    assert sorted(s["name"] for s in spans) == ["POST", "chat gpt"]


def test_with_the_sdk_disabled_the_gateway_serves_and_logs_but_exports_no_spans(
        tmp_path: Path, upstream: FakeOpenAI) -> None:
    config = {"model_list": [openai_model("gpt", upstream)],
              "litellm_settings": {"success_callback": ["file", "otel"]}}
    with OtlpSink() as sink:
        env = {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url}
        with running_gateway(config, data_dir=tmp_path, env=env) as gateway, \
                OpenAI(base_url=gateway.openai_base_url, api_key="x", max_retries=0) as openai:
            chat(openai, "sdk-off")
            [logged] = gateway.wait_for_spans(1)  # the call log is not OpenTelemetry export: it keeps running
            table = gateway.gateway.router_processor.table
        assert sink.requests == []
    assert table.default.traces == ()
    # No trace destination, so the transport made no HTTP child span: the upstream's parent is the call.
    assert sent(upstream, "sdk-off").headers["traceparent"].split("-")[2] == logged["span_id"]
