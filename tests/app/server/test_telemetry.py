"""The upstream transport: instrumented (child spans) and never carrying one caller's cookies to another."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import use_span

from app.config.settings import ConfigError, DeploymentConfig
from app.providers.openai_compat import OpenAICompatibleDeployment
from app.server.telemetry import build_resource, build_upstream_transport, http_semconv_mode, sdk_disabled
from contracts import semconv as sc
from tests.support.sinks import HttpSink, Reply


async def test_upstream_set_cookie_is_not_replayed_and_each_call_is_a_child_span() -> None:
    provider = TracerProvider()
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    reply = Reply(body=b'{"id": "x"}', headers={"Content-Type": "application/json",
                                              "Set-Cookie": "session=team-a-secret; Path=/"})
    with HttpSink(lambda _req: reply) as sink:
        transport = build_upstream_transport(provider)
        deployment = OpenAICompatibleDeployment(
            DeploymentConfig("m", "openai", "m", "m-0", api_base=sink.url + "/v1", api_key="sk-up"), transport)
        try:
            first = await deployment.complete(sc.OP_CHAT, {"messages": []})
            second = await deployment.complete(sc.OP_CHAT, {"messages": []})
        finally:
            await transport.aclose()
    assert (first.status, second.status, second.body) == (200, 200, b'{"id": "x"}')
    assert "cookie" not in sink.requests[1].headers  # nothing kept from the first answer
    assert sink.requests[0].headers["authorization"] == "Bearer sk-up"
    assert [s.name for s in spans.get_finished_spans()] == ["POST", "POST"]  # the transport is instrumented


async def test_the_switch_makes_a_child_span_only_for_traced_calls_and_the_traceparent_names_the_right_parent(
) -> None:
    provider = TracerProvider()
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    traced = [False]
    with HttpSink() as sink:
        transport = build_upstream_transport(provider, child_spans=lambda: traced[0])
        deployment = OpenAICompatibleDeployment(
            DeploymentConfig("m", "openai", "m", "m-0", api_base=sink.url + "/v1"), transport, inject_traceparent=True)
        gateway = provider.get_tracer("t").start_span("chat m")
        try:
            with use_span(gateway, end_on_exit=True):
                await deployment.complete(sc.OP_CHAT, {"messages": []})
                traced[0] = True
                await deployment.complete(sc.OP_CHAT, {"messages": []})
        finally:
            await transport.aclose()
    child, parent = spans.get_finished_spans()
    assert (child.name, child.parent.span_id, parent.name) == ("POST", gateway.get_span_context().span_id, "chat m")
    untraced, traced_call = (r.headers["traceparent"].split("-")[2] for r in sink.requests)
    assert int(untraced, 16) == gateway.get_span_context().span_id  # the gateway span, no child made
    assert int(traced_call, 16) == child.get_span_context().span_id  # the instrumentation's own child


def test_the_resource_is_the_operators_service_name_and_attributes() -> None:
    default = dict(build_resource({}).attributes)
    assert (default[sc.SERVICE_NAME], default["telemetry.sdk.language"]) == ("spangate", "python")
    env = {"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs, deployment.environment=prod%20eu,service.version=9",
           "OTEL_SERVICE_NAME": "billing-gateway"}
    attrs = dict(build_resource(env).attributes)
    assert (attrs[sc.SERVICE_NAME], attrs["deployment.environment"], attrs[sc.SERVICE_VERSION]) == (
        "billing-gateway", "prod eu", "9")  # OTEL_SERVICE_NAME wins over both, the variables over the code
    assert attrs[sc.SERVICE_INSTANCE_ID] == default[sc.SERVICE_INSTANCE_ID]
    assert build_resource({"OTEL_RESOURCE_ATTRIBUTES": "service.name=a"}).attributes[sc.SERVICE_NAME] == "a"


def test_a_malformed_resource_variable_stops_start_up_naming_it() -> None:
    with pytest.raises(ConfigError) as info:
        build_resource({"OTEL_RESOURCE_ATTRIBUTES": "team=a,oops"})
    assert str(info.value).startswith("OTEL_RESOURCE_ATTRIBUTES: 'oops' is not key=value")


def test_only_true_disables_the_sdk() -> None:
    assert [sdk_disabled({"OTEL_SDK_DISABLED": v}) for v in ("true", "TRUE", " True ", "1", "yes", "")] == [
        True, True, True, False, False, False]
    assert not sdk_disabled({})


async def _child_span(mode_env: dict[str, str], url: str) -> dict[str, object]:
    provider = TracerProvider()
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    transport = build_upstream_transport(provider, http_semconv=http_semconv_mode(mode_env))
    try:
        response = await transport.handle_async_request(httpx.Request("POST", url, content=b"{}"))
        await response.aread()
    finally:
        await transport.aclose()
    [span] = spans.get_finished_spans()
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.schema_url == "https://opentelemetry.io/schemas/1.21.0"  # the stable HTTP names
    return dict(span.attributes or {})


async def test_the_upstream_child_span_uses_the_stable_http_names_without_credentials() -> None:
    with HttpSink() as sink:
        host = sink.url.removeprefix("http://")
        attrs = await _child_span({}, f"http://user:pw@{host}/v1/chat/completions")
    assert attrs[sc.HTTP_REQUEST_METHOD] == "POST"
    assert attrs[sc.HTTP_STATUS_CODE] == 200
    assert attrs[sc.URL_FULL] == f"http://REDACTED:REDACTED@{host}/v1/chat/completions"
    assert not {"http.method", "http.url", "http.status_code"} & set(attrs)  # the pre-stable names are gone


async def test_http_dup_keeps_the_old_names_beside_the_stable_ones() -> None:
    with HttpSink() as sink:
        attrs = await _child_span({"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai, http/dup"}, sink.url + "/v1/x")
    assert (attrs[sc.HTTP_REQUEST_METHOD], attrs["http.method"]) == ("POST", "POST")
    assert (attrs[sc.HTTP_STATUS_CODE], attrs["http.status_code"]) == (200, 200)
