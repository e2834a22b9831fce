"""The upstream client: instrumented (child spans) and never carrying one caller's cookies to another."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.telemetry import build_upstream_client
from tests.support.sinks import HttpSink, Reply


async def test_upstream_set_cookie_is_not_replayed_on_later_requests() -> None:
    provider = TracerProvider()
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    reply = Reply(headers={"Content-Type": "application/json", "Set-Cookie": "session=team-a-secret; Path=/"})
    with HttpSink(lambda _req: reply) as sink:
        client = build_upstream_client(provider)
        try:
            first = await client.post(sink.url + "/v1/chat/completions", content=b"{}")
            second = await client.post(sink.url + "/v1/chat/completions", content=b"{}")
        finally:
            await client.aclose()
    assert first.status_code == second.status_code == 200
    assert "cookie" not in sink.requests[1].headers  # the jar kept nothing from the first answer
    assert [s.name for s in spans.get_finished_spans()] == ["POST", "POST"]  # the client is instrumented
