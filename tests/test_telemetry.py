"""The upstream transport: instrumented (child spans) and never carrying one caller's cookies to another."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

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
