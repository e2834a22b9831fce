"""Which attempts of a Responses call pass through (``app.dialects.responses_native.passage``), and what its
deployment hands the proxy (the chat a Response amounts to) and keeps for the client (OpenAI's bytes)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.config.settings import DeploymentConfig
from app.dialects.responses_native import passage
from app.providers.openai_compat import OpenAICompatibleDeployment
from tests.support.upstream import response_events

RESPONSE = {"id": "resp_1", "object": "response", "created_at": 1, "model": "gpt-4o", "status": "completed",
            "output": [{"type": "message", "role": "assistant",
                        "content": [{"type": "output_text", "text": "hi"}]}],
            "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}}
REQUEST = {"model": "m", "input": "hello", "metadata": {"tags": ["t"]}, "store": True}


def openai(answer: httpx.Response | None = None, seen: list[httpx.Request] | None = None,
           **config: Any) -> OpenAICompatibleDeployment:
    def reply(request: httpx.Request) -> httpx.Response:
        (seen if seen is not None else []).append(request)
        return answer or httpx.Response(200, json=RESPONSE)

    config.setdefault("model_info", {"supports_responses": True})
    settings = DeploymentConfig("m", "openai", "gpt-4o", "m-0", api_key="sk-1", **config)
    return OpenAICompatibleDeployment(settings, httpx.MockTransport(reply))


@pytest.mark.parametrize(("deployment", "request_", "direct"), [
    (openai(), REQUEST, False),  # a hook changed the request
    (openai(model_info={}, api_base="http://127.0.0.1:9/v1"), REQUEST, True),  # does not serve Responses
    (openai(default_params={"max_tokens": 5}), REQUEST, True),  # a default with no Responses field
], ids=["changed", "no-responses", "chat-default"])
def test_what_keeps_the_translation(deployment: Any, request_: dict[str, Any], direct: bool) -> None:
    assert passage(request_, deployment, {}, direct) is None


def test_the_body_is_the_clients_with_shared_defaults_under_it_and_no_metadata() -> None:
    found = passage(REQUEST, openai(default_params={"temperature": 0.3}), {})
    assert found is not None
    assert found.body == {"temperature": 0.3, "model": "m", "input": "hello", "store": True}


def test_the_proxy_reads_chat_and_the_client_gets_openais_bytes() -> None:
    seen: list[httpx.Request] = []
    found = passage(REQUEST, openai(seen=seen), {})
    assert found is not None
    reply = asyncio.run(found.deployment.complete("chat", found.body))
    chat = json.loads(reply.body)
    assert chat["object"] == "chat.completion" and chat["choices"][0]["message"]["content"] == "hi"
    assert json.loads(found.answer()) == RESPONSE
    [request] = seen
    assert request.url.path == "/v1/responses" and json.loads(request.content)["model"] == "gpt-4o"
    assert found.deployment.sent_request("chat", found.body).url.endswith("/v1/responses")


def test_an_error_reply_goes_to_the_proxy_as_it_came() -> None:
    error = {"error": {"message": "slow down", "type": "rate_limit", "code": "rate_limit_exceeded"}}
    found = passage(REQUEST, openai(httpx.Response(429, json=error, headers={"retry-after": "3"})), {})
    assert found is not None
    reply = asyncio.run(found.deployment.complete("chat", found.body))
    assert (reply.status, json.loads(reply.body), reply.retry_after) == (429, error, 3)
    assert found.answer() == b""


def test_a_stream_opens_responses_and_the_relay_reads_chat_while_the_events_are_kept() -> None:
    events = b"".join(response_events({"model": "gpt-4o", "input": "hi"}))

    async def body() -> AsyncIterator[bytes]:
        for cut in range(0, len(events), 100):  # the network's cuts fall inside events
            yield events[cut:cut + 100]

    found = passage({**REQUEST, "stream": True}, openai(httpx.Response(200, content=body())), {})
    assert found is not None

    async def read() -> bytes:
        handle = await found.deployment.stream("chat", found.body)
        try:
            return b"".join([chunk async for chunk in handle.chunks()])
        finally:
            await handle.aclose()

    chat = asyncio.run(read())
    assert b'"content":"fake "' in chat and chat.endswith(b"data: [DONE]\n\n")
    assert found.tee is not None and found.tee.rest() == events
