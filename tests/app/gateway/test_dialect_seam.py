"""The dialect seam: a toy dialect's call goes through the front door and the proxy as a chat call,
answered, streamed and refused in the dialect's own shape, with one chat span."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from litestar import Litestar
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from app.calls.caller import Caller
from app.calls.pricing import PriceBook
from app.config.settings import DeploymentConfig
from app.errors import AuthenticationFailed, GatewayError, InvalidRequest
from app.gateway.front import DialectRoute, GatewayApp
from app.gateway.proxy import Admission, ProxyService
from app.providers import ModelGroup, ModelRouter
from app.providers.mock import MockDeployment
from contracts import semconv as sc
from tests.app.gateway.test_front import scope


async def served(app: Any, asgi_scope: dict[str, Any], body: bytes = b"") -> list[dict[str, Any]]:
    """The ASGI messages ``app`` sends for one request; the client stays until the answer ends."""
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []
    answered = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    await app(asgi_scope, receive, send)
    return sent


@dataclass
class ToyStream:
    closed: bool = False

    def feed(self, chunk: dict[str, Any]) -> bytes:
        text = "".join(c.get("delta", {}).get("content") or "" for c in chunk.get("choices") or ())
        return f"said: {text}\n\n".encode() if text else b""

    def error(self, error: dict[str, Any]) -> bytes:
        return f"oops: {error['message']}\n\n".encode()

    def close(self) -> bytes:
        self.closed = True
        return b"over\n\n"


@dataclass
class ToyDialect:
    """``{"bot", "say", "loud"}`` in, ``{"said"}`` out; errors as ``{"oops": message}``."""

    name: str = "toy"
    streams: list[ToyStream] = field(default_factory=list)

    def to_chat(self, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body.get("say"), str):
            raise InvalidRequest("'say' must be a string", param="say")
        return {"model": body.get("bot"), "messages": [{"role": "user", "content": body["say"]}],
                "stream": body.get("loud") is True, "mock_response": "hello there"}

    def answer(self, chat: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        return {"said": chat["choices"][0]["message"]["content"], "to": request["say"]}

    def stream(self, request: dict[str, Any]) -> ToyStream:
        self.streams.append(ToyStream())
        return self.streams[-1]

    def error(self, exc: GatewayError) -> tuple[int, bytes]:
        return 418 if exc.status == 400 else exc.status, json.dumps({"oops": exc.message}).encode()


class Keys:
    def __init__(self) -> None:
        self.tokens: list[str | None] = []

    def authenticate(self, token: str | None) -> Caller:
        self.tokens.append(token)
        if token != "sk-good":
            raise AuthenticationFailed("bad key")
        return Caller()


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    yield memory
    memory.shutdown()


def door(exporter: InMemorySpanExporter, dialect: ToyDialect, keys: Keys) -> GatewayApp:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    mock = MockDeployment(DeploymentConfig("bot", "mock", "bot", "bot-0"))
    teams = SimpleNamespace(capture_content=lambda team: True)
    proxy = ProxyService(ModelRouter({"bot": ModelGroup("bot", [mock])}), provider.get_tracer("t"), PriceBook(),
                         None, admission=Admission(keys, teams))  # type: ignore[arg-type]
    gateway = SimpleNamespace(proxy=proxy, config=SimpleNamespace(max_request_body_bytes=1 << 16))
    routes = {"/v1/toy": DialectRoute(dialect, key_header="x-toy-key"),
              "/v1/toy/count": DialectRoute(dialect, key_header="x-toy-key", local=lambda b: {"n": len(b)})}
    return GatewayApp(Litestar([], logging_config=None), gateway, routes)


def post(body: dict[str, Any], key: str = "sk-good") -> tuple[dict[str, Any], bytes]:
    return scope("POST", "/v1/toy/", [(b"x-toy-key", key.encode())]), json.dumps(body).encode()


def status_and_body(sent: list[dict[str, Any]]) -> tuple[int, bytes]:
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def test_a_dialect_call_is_answered_in_the_dialect_and_is_one_chat_span(exporter: InMemorySpanExporter) -> None:
    keys = Keys()
    sent = await served(door(exporter, ToyDialect(), keys), *post({"bot": "bot", "say": "hi"}))
    status, body = status_and_body(sent)
    assert (status, json.loads(body)) == (200, {"said": "hello there", "to": "hi"})
    assert keys.tokens == ["sk-good"]  # read from the dialect's key header
    [span] = exporter.get_finished_spans()
    assert span.attributes[sc.OPERATION_NAME] == sc.OP_CHAT
    assert span.attributes[sc.REQUEST_MODEL] == "bot"
    assert span.status.status_code is not StatusCode.ERROR


async def test_a_dialect_stream_is_written_by_the_dialect_and_closed(exporter: InMemorySpanExporter) -> None:
    dialect = ToyDialect()
    sent = await served(door(exporter, dialect, Keys()), *post({"bot": "bot", "say": "hi", "loud": True}))
    status, body = status_and_body(sent)
    assert status == 200
    assert body.startswith(b"said: ") and body.endswith(b"over\n\n")
    assert "".join(line[6:] for line in body.decode().split("\n\n") if line.startswith("said: ")) == "hello there"
    assert b"data:" not in body and dialect.streams[0].closed
    [span] = exporter.get_finished_spans()
    assert span.attributes[sc.STREAM_OUTCOME] == sc.STREAM_COMPLETED


@pytest.mark.parametrize(("body", "key", "expected"), [
    ({"bot": "bot", "say": 3}, "sk-good", (418, {"oops": "'say' must be a string"})),
    ({"bot": "bot", "say": "hi"}, "sk-bad", (401, {"oops": "bad key"})),
])
async def test_errors_are_in_the_dialect_shape(exporter: InMemorySpanExporter, body: dict[str, Any], key: str,
                                               expected: tuple[int, dict[str, Any]]) -> None:
    status, raw = status_and_body(await served(door(exporter, ToyDialect(), Keys()), *post(body, key)))
    assert (status, json.loads(raw)) == expected


async def test_an_unknown_model_is_a_failed_chat_span_and_a_dialect_error(exporter: InMemorySpanExporter) -> None:
    status, raw = status_and_body(await served(door(exporter, ToyDialect(), Keys()), *post({"bot": "x", "say": "hi"})))
    assert status == 404 and "not configured" in json.loads(raw)["oops"]
    [span] = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR


async def test_a_local_route_answers_from_the_body_without_a_call(exporter: InMemorySpanExporter) -> None:
    asgi = scope("POST", "/v1/toy/count", [(b"authorization", b"Bearer sk-good")])
    status, raw = status_and_body(await served(door(exporter, ToyDialect(), Keys()), asgi, b'{"a": 1, "b": 2}'))
    assert (status, json.loads(raw)) == (200, {"n": 2})
    assert exporter.get_finished_spans() == ()
