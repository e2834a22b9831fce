"""``mock/<name>``: answers without network, deterministically (but for a random response id), with real SSE.

Also serves any request that carries ``mock_response`` (as LiteLLM does), so demos and tests run
offline. Token counts approximate a BPE tokenizer (about four characters a token) so cost and
usage attributes look like a real call's.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import struct
from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec

from app.calls.operations import facts
from app.calls.record import SentRequest
from app.config.settings import DeploymentConfig
from app.providers.base import UpstreamReply
from contracts import semconv as sc

_encode = msgspec.json.encode
_CREATED = 1_700_000_000  # fixed so answers are byte-for-byte repeatable


def count_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4) if text else 0


def _prompt_text(operation: str, payload: Mapping[str, Any]) -> list[str]:
    if operation == sc.OP_CHAT:
        texts = []
        for message in payload.get("messages") or ():
            content = message.get("content") if isinstance(message, Mapping) else None
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts.extend(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        return texts
    value = payload.get(facts(operation).required)
    if isinstance(value, str):
        return [value]
    return [v if isinstance(v, str) else str(v) for v in value] if isinstance(value, list) else [str(value)]


def _answer_text(model: str, texts: list[str], mock_response: Any) -> str:
    if isinstance(mock_response, str):
        return mock_response
    last = texts[-1] if texts else ""
    return f"This is a mock response from {model}. You said: {last[:200]}"


def _request_id(prefix: str) -> str:
    # Random, unlike the rest of the mock: trace backends (Langfuse, Phoenix) key calls by
    # gen_ai.response.id, and a digest of the prompt merged every repeat of a prompt into one call.
    return f"{prefix}-mock{secrets.token_hex(12)}"


class MockStream:
    status = 200
    retry_after = None

    def __init__(self, events: list[bytes], delay: float) -> None:
        self._events = events
        self._delay = delay

    async def chunks(self) -> AsyncIterator[bytes]:
        for event in self._events:
            yield event
            await asyncio.sleep(self._delay)  # a real stream yields to the loop between chunks

    async def read(self) -> bytes:
        return b"".join(self._events)

    async def aclose(self) -> None:
        return None


class MockDeployment:
    provider_name = sc.PROVIDER_MOCK
    server_address = "mock.spangate.local"
    server_port = 0

    def __init__(self, config: DeploymentConfig) -> None:
        self.config = config
        self._chunk_delay = float(config.model_info.get("mock_chunk_delay", 0.0))

    def sent_request(self, operation: str, payload: dict[str, Any]) -> SentRequest:
        return SentRequest("POST", f"mock://{self.config.upstream_model}/{operation}", {}, payload)

    async def complete(self, operation: str, payload: dict[str, Any]) -> UpstreamReply:
        if operation == sc.OP_EMBEDDINGS:
            return UpstreamReply(200, _encode(self._embeddings(payload)))
        return UpstreamReply(200, _encode(self._completion(operation, payload)))

    async def stream(self, operation: str, payload: dict[str, Any]) -> MockStream:
        return MockStream(self._events(operation, payload), self._chunk_delay)

    def _usage(self, operation: str, payload: Mapping[str, Any], answer: str) -> dict[str, int]:
        texts = _prompt_text(operation, payload)
        prompt = sum(count_tokens(t) for t in texts) + (4 * len(texts) if operation == sc.OP_CHAT else 0)
        completion = count_tokens(answer)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _completion(self, operation: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        answer = _answer_text(self.config.upstream_model, _prompt_text(operation, payload),
                              payload.get("mock_response"))
        usage = self._usage(operation, payload, answer)
        if operation == sc.OP_CHAT:
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": answer},
                                      "finish_reason": "stop", "logprobs": None}
            prefix = "chatcmpl"
        else:
            choice = {"index": 0, "text": answer, "finish_reason": "stop", "logprobs": None}
            prefix = "cmpl"
        return {"id": _request_id(prefix), "object": facts(operation).answer_object, "created": _CREATED,
                "model": self.config.upstream_model, "choices": [choice], "usage": usage}

    def _events(self, operation: str, payload: Mapping[str, Any]) -> list[bytes]:
        full = self._completion(operation, payload)
        choice = full["choices"][0]
        answer = choice["message"]["content"] if operation == sc.OP_CHAT else choice["text"]
        words = answer.split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        base = {"id": full["id"], "object": facts(operation).chunk_object, "created": _CREATED, "model": full["model"]}
        events = [self._chunk(base, operation, piece, None, first=i == 0) for i, piece in enumerate(pieces)]
        events.append(self._chunk(base, operation, "", "stop", first=False))
        options = payload.get("stream_options")
        if isinstance(options, Mapping) and options.get("include_usage"):
            events.append(_sse({**base, "choices": [], "usage": full["usage"]}))
        events.append(b"data: [DONE]\n\n")
        return events

    @staticmethod
    def _chunk(base: dict[str, Any], operation: str, text: str, finish: str | None, *, first: bool) -> bytes:
        if operation == sc.OP_CHAT:
            delta: dict[str, Any] = {"content": text} if text or not finish else {}
            if first:
                delta["role"] = "assistant"
            choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        else:
            choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
        return _sse({**base, "choices": [choice]})

    def _embeddings(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        texts = _prompt_text(sc.OP_EMBEDDINGS, payload)
        dims = payload.get("dimensions") if isinstance(payload.get("dimensions"), int) else 16
        data = [{"object": "embedding", "index": i, "embedding": _vector(t, dims)} for i, t in enumerate(texts)]
        tokens = sum(count_tokens(t) for t in texts)
        return {"object": facts(sc.OP_EMBEDDINGS).answer_object, "data": data, "model": self.config.upstream_model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _vector(text: str, dims: int) -> list[float]:
    """A deterministic unit-ish vector from the text's hash."""
    out: list[float] = []
    counter = 0
    while len(out) < dims:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        out.extend(v / 2**31 for v in struct.unpack("<8i", digest))
        counter += 1
    return [round(v, 6) for v in out[:dims]]


def _sse(obj: Mapping[str, Any]) -> bytes:
    return b"data: " + _encode(obj) + b"\n\n"
