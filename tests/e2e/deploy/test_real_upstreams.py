"""The OpenAI routes end to end through upstreams served by real HTTP servers (issue 8).

The gateway (real server, loopback) proxies to the same fake OpenAI answers served by uvicorn,
aiohttp's web server and ``http.server`` (keep-alive, and a route that answers close-delimited).
Each caller puts its own marker in its prompt or input and must get it back, alone or with
callers running at the same time; each call's span must be OK. See ``tests/support/real_upstreams.py``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from openai import AsyncOpenAI

from contracts import semconv as sc
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.real_upstreams import (
    CLOSE_PREFIX,
    aiohttp_upstream,
    decode_echo,
    http_server_upstream,
    uvicorn_upstream,
)
from tests.support.spanlog import only

KINDS = ("uvicorn", "aiohttp", "http.server", "http.server-close-delimited")
CONCURRENT = 8
TAG = sc.metadata_key("test")


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, str]]:
    """Each kind's ``api_base``."""
    with ExitStack() as stack:
        plain = stack.enter_context(http_server_upstream())
        yield {"uvicorn": stack.enter_context(uvicorn_upstream()) + "/v1",
               "aiohttp": stack.enter_context(aiohttp_upstream()) + "/v1",
               "http.server": plain + "/v1", "http.server-close-delimited": plain + CLOSE_PREFIX + "/v1"}


def deployment(name: str, model: str, api_base: str) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": f"openai/{model}", "api_base": api_base,
                                                   "api_key": "sk-upstream-real-servers"}}


@pytest.fixture(scope="module")
def gw(upstreams: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    models = [deployment(f"chat-{kind}", "gpt-4o-mini", base) for kind, base in upstreams.items()]
    models += [deployment(f"embed-{kind}", "text-embedding-3-small", base) for kind, base in upstreams.items()]
    config = {"model_list": models,
              "litellm_settings": {"success_callback": ["file"], "failure_callback": ["file"]}}
    with running_gateway(config, data_dir=tmp_path_factory.mktemp("gw")) as running:
        yield running


@pytest.fixture
async def client(gw: RunningGateway) -> Any:
    async with AsyncOpenAI(base_url=gw.openai_base_url, api_key="anything", max_retries=0, timeout=10) as openai:
        yield openai


def ok_span(gw: RunningGateway, marker: str) -> dict[str, Any]:
    span = only(gw.wait_for_spans(1, where=lambda s: s["attributes"].get(TAG) == marker))
    assert span["status"]["code"] == "OK", span["status"]
    return span["attributes"]


async def chat(client: AsyncOpenAI, gw: RunningGateway, kind: str, marker: str) -> None:
    reply = await client.chat.completions.create(model=f"chat-{kind}", messages=[{"role": "user", "content": marker}],
                                                 extra_body={"metadata": {"test": marker}})
    assert reply.choices[0].message.content == f"fake says: {marker}"
    attrs = ok_span(gw, marker)
    assert json.loads(attrs[sc.OUTPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": f"fake says: {marker}"}]


async def chat_stream(client: AsyncOpenAI, gw: RunningGateway, kind: str, marker: str) -> None:
    stream = await client.chat.completions.create(model=f"chat-{kind}", messages=[{"role": "user", "content": marker}],
                                                  stream=True, extra_body={"metadata": {"test": marker}})
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == f"fake says: {marker}"
    attrs = ok_span(gw, marker)
    assert attrs[sc.STREAM_OUTCOME] == sc.STREAM_COMPLETED
    assert json.loads(attrs[sc.OUTPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": f"fake says: {marker}"}]


async def embed(client: AsyncOpenAI, gw: RunningGateway, kind: str, marker: str) -> None:
    reply = await client.embeddings.create(model=f"embed-{kind}", input=[marker, marker[::-1]],
                                           encoding_format="float", extra_body={"metadata": {"test": marker}})
    assert [decode_echo(d.embedding) for d in reply.data] == [marker, marker[::-1]]
    assert ok_span(gw, marker)[sc.OPERATION_NAME] == "embeddings"


CALLS = {"chat": chat, "chat-stream": chat_stream, "embeddings": embed}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("call", CALLS)
async def test_each_caller_gets_its_own_answer_alone_and_concurrently(
        gw: RunningGateway, client: AsyncOpenAI, kind: str, call: str) -> None:
    one = CALLS[call]
    for _ in range(3):  # one after another: a kept-alive connection serves the next call
        await one(client, gw, kind, f"{call}-{kind}-{secrets.token_hex(6)}")
    markers = [f"{call}-{kind}-{secrets.token_hex(6)}" for _ in range(CONCURRENT)]
    await asyncio.gather(*(one(client, gw, kind, marker) for marker in markers))


def test_the_close_delimited_route_answers_without_length_and_closes(upstreams: dict[str, str]) -> None:
    """The framing the close-delimited deployment relies on, read off the wire."""
    base = upstreams["http.server-close-delimited"]
    host, port = base.split("//")[1].split("/")[0].split(":")
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "wire"}]}).encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST %b/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%b"
                     % (base.split(port, 1)[1].encode(), len(body), body))
        raw = b"".join(iter(lambda: sock.recv(65536), b""))  # until the server closes
    head, payload = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.0 200")
    assert b"content-length" not in head.lower() and b"transfer-encoding" not in head.lower()
    assert json.loads(payload)["choices"][0]["message"]["content"] == "fake says: wire"
