"""The HTTP side every native provider shares (``app.providers.native``), with a toy dialect.

The toy speaks "upper JSON": it sends the last message's text, answers carry ``TEXT``; errors carry
``problem``. What is checked is the seam: requests built by the dialect go out as built, answers,
errors and streams come back in OpenAI's shapes, and an operation the provider lacks is a 400.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx
import pytest

from app.calls.operations import Operation
from app.config.settings import DeploymentConfig
from app.errors import InvalidRequest
from app.providers.native import NativeDeployment, NativeRequest, Resources


class _Toy:
    provider_name = "toy"
    operations = frozenset({Operation.CHAT})

    def request(self, operation: Operation, payload: dict[str, Any], stream: bool) -> NativeRequest:
        body = {"say": payload["messages"][-1]["content"], "stream": stream}
        return NativeRequest("https://toy.test/v9/say", {"x-toy-key": "k", "content-type": "application/json"},
                             json.dumps(body).encode(), body)

    def answer(self, operation: Operation, body: bytes, payload: dict[str, Any]) -> bytes:
        text = json.loads(body)["TEXT"]
        return json.dumps({"object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}).encode()

    def error(self, status: int, body: bytes) -> bytes:
        return json.dumps({"error": {"message": json.loads(body)["problem"], "type": "toy_error"}}).encode()

    def stream(self, operation: Operation, payload: dict[str, Any]) -> _Lines:
        return _Lines()


class _Lines:
    def __init__(self) -> None:
        self.fed: list[bytes] = []

    def feed(self, data: bytes) -> bytes:
        self.fed.append(data)
        return b"".join(b'data: {"choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n' % w for w in data.split())

    def close(self) -> bytes:
        return b"data: [DONE]\n\n"


def _deployment(handler: Any) -> tuple[NativeDeployment, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    config = DeploymentConfig("toy-model", "toy", "toy-1", "toy-0", api_base="https://toy.test")
    return NativeDeployment(config, _Toy(), Resources(httpx.MockTransport(record))), seen


async def test_an_answer_goes_out_as_the_dialect_built_it_and_comes_back_in_openai_shape() -> None:
    deployment, seen = _deployment(lambda r: httpx.Response(200, json={"TEXT": "HELLO"}))
    reply = await deployment.complete("chat", {"messages": [{"role": "user", "content": "hello"}]})
    assert reply.status == 200
    assert json.loads(reply.body)["choices"][0]["message"]["content"] == "HELLO"
    [request] = seen
    assert str(request.url) == "https://toy.test/v9/say" and request.headers["x-toy-key"] == "k"
    assert json.loads(request.content) == {"say": "hello", "stream": False}
    assert (deployment.server_address, deployment.server_port, deployment.provider_name) == ("toy.test", 443, "toy")


async def test_an_error_answer_keeps_its_status_and_becomes_openai_error_json() -> None:
    deployment, _ = _deployment(lambda r: httpx.Response(429, json={"problem": "slow down"}))
    reply = await deployment.complete("chat", {"messages": [{"role": "user", "content": "x"}]})
    assert reply.status == 429
    assert json.loads(reply.body) == {"error": {"message": "slow down", "type": "toy_error"}}


async def test_a_stream_is_translated_chunk_by_chunk_and_ended_by_the_translator() -> None:
    deployment, seen = _deployment(lambda r: httpx.Response(200, stream=httpx.ByteStream(b"one two")))
    handle = await deployment.stream("chat", {"messages": [{"role": "user", "content": "x"}], "stream": True})
    out = b"".join([part async for part in handle.chunks()])
    await handle.aclose()
    assert out.count(b"data: {") == 2 and out.endswith(b"data: [DONE]\n\n")
    assert json.loads(seen[0].content)["stream"] is True


async def test_a_streamed_error_is_read_in_openai_shape() -> None:
    deployment, _ = _deployment(lambda r: httpx.Response(400, json={"problem": "bad"}))
    handle = await deployment.stream("chat", {"messages": [{"role": "user", "content": "x"}], "stream": True})
    assert handle.status == 400
    assert json.loads(await handle.read())["error"]["message"] == "bad"
    await handle.aclose()


async def test_an_operation_the_provider_does_not_serve_is_a_400_and_nothing_is_sent() -> None:
    deployment, seen = _deployment(lambda r: httpx.Response(200, json={}))
    with pytest.raises(InvalidRequest) as caught:
        await deployment.complete("embeddings", {"input": "x"})
    assert caught.value.status == 400 and caught.value.code == "unsupported_operation" and seen == []


def test_the_raw_request_shown_is_the_native_one() -> None:
    deployment, _ = _deployment(lambda r: httpx.Response(200, json={}))
    sent = deployment.sent_request("chat", {"messages": [{"role": "user", "content": "hi"}]})
    assert sent.url == "https://toy.test/v9/say" and sent.body == {"say": "hi", "stream": False}


def test_building_openai_and_mock_deployments_loads_no_native_provider() -> None:
    code = (
        "import sys, httpx\n"
        "from app.config.settings import DeploymentConfig\n"
        "from app.providers.registry import build_deployment\n"
        "from app.providers.native import Resources\n"
        "r = Resources(httpx.MockTransport(lambda q: None))\n"
        "build_deployment(DeploymentConfig('a', 'openai', 'gpt', 'a-0'), r)\n"
        "build_deployment(DeploymentConfig('b', 'mock', 'm', 'b-0'), r)\n"
        "loaded = [m for m in ('app.providers.anthropic', 'app.providers.gemini', 'app.providers.vertex',\n"
        "          'app.providers.bedrock', 'botocore', 'google.auth') if m in sys.modules]\n"
        "print(loaded)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
