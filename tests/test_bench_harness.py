"""The bench's fake upstream still speaks OpenAI, so bench numbers never come from a broken fake.

The fake runs in-process on free loopback ports; httpx and the official openai SDK talk to it.
"""

import base64
import importlib.util
import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI

FAKE_PATH = Path(__file__).resolve().parent.parent / "bench" / "fake_upstream.py"
CHAT = {"model": "bench-chat", "messages": [{"role": "user", "content": "hi"}]}


def _load_fake() -> ModuleType:
    # bench/ is not a package and stays out of sys.path: load the file as a private module.
    spec = importlib.util.spec_from_file_location("bench_fake_upstream", FAKE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fake_upstream = _load_fake()


@pytest.fixture
async def servers() -> AsyncIterator[Any]:
    running = await fake_upstream.serve("127.0.0.1", 0, otlp_port=0)
    yield running
    await running.close()


@pytest.fixture
async def client(servers: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{servers.port}") as http:
        yield http


def _sse_data(text: str) -> list[str]:
    assert text.endswith("\n\n")
    events = [e for e in text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events), events
    return [e.removeprefix("data: ") for e in events]


async def test_chat_completion(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "bench-chat"
    assert body["choices"][0]["message"]["content"] == "".join(fake_upstream.CONTENT_WORDS)
    assert body["choices"][0]["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    second = (await client.post("/v1/chat/completions", json=CHAT)).json()
    assert second["id"] != body["id"]


async def test_stream_with_usage_ends_with_usage_chunk_then_done(client: httpx.AsyncClient) -> None:
    request = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    response = await client.post("/v1/chat/completions", json=request)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    data = _sse_data(response.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert len(chunks) >= 10
    assert len({c["id"] for c in chunks}) == 1
    usage_chunks = [c for c in chunks if c.get("usage")]
    assert usage_chunks == [chunks[-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    assert text == "".join(fake_upstream.CONTENT_WORDS)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


async def test_stream_without_include_usage_has_no_usage(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    data = _sse_data(response.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)


async def test_embeddings_float_and_base64(client: httpx.AsyncClient) -> None:
    dims = fake_upstream.EMBED_DIMS
    floats = (await client.post("/v1/embeddings", json={"model": "bench-embed", "input": ["a", "b"]})).json()
    assert floats["object"] == "list" and floats["model"] == "bench-embed"
    assert [d["index"] for d in floats["data"]] == [0, 1]
    assert len(floats["data"][0]["embedding"]) == dims
    assert floats["usage"]["prompt_tokens"] == floats["usage"]["total_tokens"] > 0
    request = {"model": "bench-embed", "input": "a", "encoding_format": "base64"}
    packed = (await client.post("/v1/embeddings", json=request)).json()
    assert len(packed["data"]) == 1
    assert len(base64.b64decode(packed["data"][0]["embedding"])) == dims * 4


async def test_models(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/models")
    assert response.status_code == 200
    assert {m["id"] for m in response.json()["data"]} >= {"bench-chat", "bench-embed"}


async def test_bad_requests_get_openai_errors(client: httpx.AsyncClient) -> None:
    bad = await client.post("/v1/chat/completions", content=b"{not json")
    assert bad.status_code == 400 and "message" in bad.json()["error"]
    missing = await client.get("/v1/nothing")
    assert missing.status_code == 404 and "error" in missing.json()


async def test_otlp_sink_accepts_and_counts(servers: Any) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{servers.otlp_port}") as sink:
        headers = {"content-type": "application/x-protobuf"}
        response = await sink.post("/v1/traces", content=b"\x0a\x00", headers=headers)
        assert response.status_code == 200 and response.content == b""
        stats = (await sink.get("/stats")).json()
    assert stats["POST /v1/traces"] == 1 and stats["otlp_bytes"] == 2


async def test_official_sdk_reads_every_shape(servers: Any) -> None:
    async with AsyncOpenAI(api_key="sk-bench", base_url=f"http://127.0.0.1:{servers.port}/v1") as sdk:
        completion = await sdk.chat.completions.create(model="bench-chat", messages=CHAT["messages"])
        assert completion.usage is not None and completion.usage.total_tokens > 0
        stream = await sdk.chat.completions.create(
            model="bench-chat", messages=CHAT["messages"], stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
        assert chunks[-1].usage is not None and chunks[-1].choices == []
        embedding = await sdk.embeddings.create(model="bench-embed", input="hello")  # SDK asks for base64
        assert len(embedding.data[0].embedding) == fake_upstream.EMBED_DIMS
        assert [m.id async for m in sdk.models.list()][:1] == ["bench-chat"]
