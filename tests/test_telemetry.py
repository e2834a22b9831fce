"""The upstream transport: instrumented (child spans) and never carrying one caller's cookies to another."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import use_span

from app.config import DeploymentConfig
from app.providers.openai_compat import OpenAICompatibleDeployment
from app.telemetry import build_upstream_transport
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
