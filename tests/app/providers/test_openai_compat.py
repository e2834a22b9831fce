"""How requests to OpenAI-compatible upstreams look on the wire (azure/ and openai/), via MockTransport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from app.config.settings import DeploymentConfig
from app.errors import UpstreamResponseTooLarge
from app.providers.openai_compat import OpenAICompatibleDeployment
from contracts import semconv as sc


def _capture() -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "x", "choices": []})

    return seen, httpx.MockTransport(handler)


async def test_azure_uses_deployment_path_api_version_and_api_key_header() -> None:
    seen, client = _capture()
    config = DeploymentConfig("gpt-4o", "azure", "my-deploy", "gpt-4o-0", api_base="https://res.openai.azure.com/",
                              api_key="azure-secret", api_version="2024-10-21")
    deployment = OpenAICompatibleDeployment(config, client)
    reply = await deployment.complete(sc.OP_CHAT, {"model": "gpt-4o", "messages": []})
    assert reply.status == 200
    [request] = seen
    assert str(request.url) == ("https://res.openai.azure.com/openai/deployments/my-deploy/chat/completions"
                                "?api-version=2024-10-21")
    assert request.headers["api-key"] == "azure-secret"
    assert "authorization" not in request.headers
    assert deployment.provider_name == sc.PROVIDER_AZURE
    assert (deployment.server_address, deployment.server_port) == ("res.openai.azure.com", 443)


async def test_openai_sends_bearer_key_and_the_upstream_model_name() -> None:
    seen, client = _capture()
    config = DeploymentConfig("fast", "openai", "gpt-4o-mini", "fast-0", api_base="http://127.0.0.1:9/v1",
                              api_key="sk-up", headers={"x-org": "acme"})
    deployment = OpenAICompatibleDeployment(config, client)
    await deployment.complete(sc.OP_EMBEDDINGS, {"model": "fast", "input": "hi"})
    [request] = seen
    assert str(request.url) == "http://127.0.0.1:9/v1/embeddings"
    assert request.headers["authorization"] == "Bearer sk-up"
    assert request.headers["x-org"] == "acme"
    assert json.loads(request.content) == {"model": "gpt-4o-mini", "input": "hi"}
    assert (deployment.server_address, deployment.server_port) == ("127.0.0.1", 9)


class EndlessBody(httpx.AsyncByteStream):
    """An answer that never ends (or ends after ``total`` bytes): counts the pieces read and whether
    it was closed."""

    def __init__(self, piece: bytes = b"x" * 65536, total: int | None = None) -> None:
        self.piece = piece
        self.left = total
        self.reads = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.left is None or self.left > 0:
            self.reads += 1
            piece = self.piece if self.left is None else self.piece[:self.left]
            if self.left is not None:
                self.left -= len(piece)
            yield piece

    async def aclose(self) -> None:
        self.closed = True


def _answering(status: int, body: EndlessBody, headers: dict[str, str] | None = None) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, headers=headers, stream=body))


LIMIT = 1 << 20
LOCAL = DeploymentConfig("fast", "openai", "gpt-4o-mini", "fast-0", api_base="http://127.0.0.1:9/v1")


@pytest.mark.parametrize("status", [200, 500])
async def test_an_endless_answer_is_read_only_up_to_the_cap_then_closed(status: int) -> None:
    body = EndlessBody()
    deployment = OpenAICompatibleDeployment(LOCAL, _answering(status, body), max_response_bytes=LIMIT)
    with pytest.raises(UpstreamResponseTooLarge) as caught:
        await deployment.complete(sc.OP_CHAT, {"model": "fast", "messages": []})
    assert body.reads == LIMIT // 65536 + 1  # the first piece over the cap stops the read
    assert body.closed
    assert caught.value.status == 502
    assert caught.value.message == ("the answer of model 'fast' (upstream 127.0.0.1) is larger than 1048576 bytes "
                                    "(spangate_settings.max_upstream_response_bytes)")


async def test_a_declared_length_over_the_cap_fails_before_any_byte_is_read() -> None:
    body = EndlessBody()
    transport = _answering(200, body, {"content-length": str(LIMIT + 1)})
    deployment = OpenAICompatibleDeployment(LOCAL, transport, max_response_bytes=LIMIT)
    with pytest.raises(UpstreamResponseTooLarge):
        await deployment.complete(sc.OP_CHAT, {"model": "fast", "messages": []})
    assert (body.reads, body.closed) == (0, True)


async def test_the_error_body_of_a_stream_is_capped_too() -> None:
    body = EndlessBody()
    deployment = OpenAICompatibleDeployment(LOCAL, _answering(503, body), max_response_bytes=LIMIT)
    handle = await deployment.stream(sc.OP_CHAT, {"model": "fast", "messages": [], "stream": True})
    try:
        with pytest.raises(UpstreamResponseTooLarge):
            await handle.read()
    finally:
        await handle.aclose()
    assert body.reads == LIMIT // 65536 + 1 and body.closed


@pytest.mark.parametrize(("size", "whole"), [(4096, True), (4097, False)])
async def test_an_answer_at_the_cap_is_whole_and_one_byte_more_is_refused(size: int, whole: bool) -> None:
    body = EndlessBody(b"y" * 1024, total=size)
    deployment = OpenAICompatibleDeployment(LOCAL, _answering(200, body), max_response_bytes=4096)
    if whole:
        assert (await deployment.complete(sc.OP_CHAT, {"model": "fast", "messages": []})).body == b"y" * size
    else:
        with pytest.raises(UpstreamResponseTooLarge):
            await deployment.complete(sc.OP_CHAT, {"model": "fast", "messages": []})


@pytest.mark.parametrize(("provider", "api_base", "model_info", "serves"), [
    ("openai", None, {}, True),  # OpenAI's own host serves /responses
    ("openai", "https://api.openai.com/v1", {}, True),
    ("openai", "http://127.0.0.1:8000/v1", {}, False),  # a compatible server mostly does not: the operator says
    ("openai", "http://127.0.0.1:8000/v1", {"supports_responses": True}, True),
    ("openai", None, {"supports_responses": False}, False),
    ("azure", "https://x.openai.azure.com", {"supports_responses": True}, False),  # another URL scheme
])
def test_which_deployments_serve_responses(provider: str, api_base: str | None, model_info: dict[str, bool],
                                           serves: bool) -> None:
    config = DeploymentConfig("m", provider, "gpt-4o", "m-0", api_base=api_base, model_info=model_info)
    assert OpenAICompatibleDeployment(config, httpx.MockTransport(lambda r: httpx.Response(200))).serves_responses \
        is serves


def test_a_responses_body_goes_to_the_responses_path_with_the_upstream_model() -> None:
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200, json={"id": "resp_1"}))
    config = DeploymentConfig("m", "openai", "gpt-4o", "m-0", api_base="https://api.openai.com/v1", api_key="sk-1")
    deployment = OpenAICompatibleDeployment(config, transport)
    reply = asyncio.run(deployment.responses({"model": "m", "input": "hi"}))
    [request] = seen
    assert (reply.status, json.loads(reply.body)) == (200, {"id": "resp_1"})
    assert str(request.url) == "https://api.openai.com/v1/responses"
    assert request.headers["authorization"] == "Bearer sk-1"
    assert json.loads(request.content) == {"model": "gpt-4o", "input": "hi"}
