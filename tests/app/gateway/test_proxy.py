"""The stream relay: however a stream ends, the client gets an answer it can read and the span says why.

The relay is driven directly with scripted upstream chunks and an in-memory span exporter; what the
real server and the ``openai`` client see is in ``tests/e2e/gateway/test_upstream_answers_e2e.py``, and a client
that leaves (``client_disconnected``) in ``tests/e2e/gateway/test_gateway_e2e.py``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from app.calls.caller import Caller
from app.calls.pricing import PriceBook
from app.calls.record import SentRequest
from app.config.settings import DeploymentConfig
from app.gateway.proxy import CallContext, ProxyService, StreamAnswer
from app.providers import ModelGroup, ModelRouter
from contracts import semconv as sc

OK_CHUNK = b'data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
DONE = b"data: [DONE]\n\n"


@dataclass
class ScriptedStream:
    """Yields ``items`` in turn; an exception among them is raised at that point."""

    items: list[bytes | BaseException]
    status: int = 200
    retry_after: int | None = None
    closed: bool = False

    async def chunks(self) -> AsyncIterator[bytes]:
        for item in self.items:
            if isinstance(item, BaseException):
                raise item
            yield item

    async def read(self) -> bytes:
        return b""

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class ScriptedDeployment:
    stream_answer: ScriptedStream
    config: DeploymentConfig = field(default_factory=lambda: DeploymentConfig("m", "openai", "m", "m-0"))
    provider_name: str = sc.PROVIDER_OPENAI
    server_address: str = "127.0.0.1"
    server_port: int = 9

    async def complete(self, operation: str, payload: dict[str, Any]) -> Any:
        raise AssertionError("only streams here")

    async def stream(self, operation: str, payload: dict[str, Any]) -> ScriptedStream:
        return self.stream_answer

    def sent_request(self, operation: str, payload: dict[str, Any]) -> SentRequest:
        return SentRequest("POST", "http://127.0.0.1:9/v1/chat/completions", {}, payload)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    yield memory
    memory.shutdown()


async def open_stream(exporter: InMemorySpanExporter, items: list[bytes | BaseException],
                      ) -> tuple[StreamAnswer, ScriptedStream]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    upstream = ScriptedStream(items)
    router = ModelRouter({"m": ModelGroup("m", [ScriptedDeployment(upstream)])})
    service = ProxyService(router, provider.get_tracer("test"), PriceBook(), None)
    ctx = CallContext(caller=Caller(), headers={}, client_ip=None, capture_content=True)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}).encode()
    answer = await service.handle(sc.OP_CHAT, body, ctx)
    assert isinstance(answer, StreamAnswer)
    return answer, upstream


async def relay_all(answer: StreamAnswer) -> list[bytes]:
    try:
        return [event async for event in answer.relay.events()]
    finally:
        await answer.relay.close()


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    [span] = exporter.get_finished_spans()
    return span


def error_event(events: list[bytes]) -> dict[str, Any]:
    assert events[-1].startswith(b"data: {\"error\"") and events[-1].endswith(b"\n\n"), events[-1]
    return json.loads(events[-1][6:])["error"]


async def test_an_unexpected_exception_ends_the_stream_with_an_error_event_not_a_disconnect(
        exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture) -> None:
    answer, upstream = await open_stream(exporter, [OK_CHUNK, ValueError("a bug or an answer nobody foresaw")])
    events = await relay_all(answer)
    assert events[0] == OK_CHUNK
    assert error_event(events) == {"message": "relaying the upstream's stream failed (ValueError)",
                                   "type": "upstream_error", "param": None, "code": "upstream_invalid_response"}
    span = only_span(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.STREAM_OUTCOME] == sc.STREAM_UPSTREAM_INVALID_RESPONSE
    assert span.attributes[sc.ERROR_TYPE] == "upstream_invalid_response"
    assert upstream.closed
    assert "ValueError" in caplog.text


async def test_a_chunk_of_the_wrong_shape_ends_the_stream_and_the_span_says_why(
        exporter: InMemorySpanExporter) -> None:
    answer, upstream = await open_stream(exporter, [OK_CHUNK, b'data: {"choices": "x"}\n\n', OK_CHUNK, DONE])
    events = await relay_all(answer)
    assert events[0] == OK_CHUNK and len(events) == 2
    assert error_event(events)["code"] == "upstream_invalid_response"
    span = only_span(exporter)
    assert (span.status.status_code, span.attributes[sc.STREAM_OUTCOME]) == (
        StatusCode.ERROR, sc.STREAM_UPSTREAM_INVALID_RESPONSE)
    assert upstream.closed  # the rest of the upstream's answer is not read: its connection is dropped


async def test_a_stream_without_done_is_ok_and_says_the_marker_was_missing(exporter: InMemorySpanExporter) -> None:
    answer, _ = await open_stream(exporter, [OK_CHUNK])
    assert await relay_all(answer) == [OK_CHUNK]
    span = only_span(exporter)
    assert (span.status.status_code, span.attributes[sc.STREAM_OUTCOME]) == (StatusCode.OK,
                                                                             sc.STREAM_ENDED_WITHOUT_DONE)
