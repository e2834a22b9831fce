"""A Gemini stream (``streamGenerateContent?alt=sse``: ``data: {GenerateContentResponse}`` events)
-> OpenAI chat completion chunks, then the usage chunk and ``data: [DONE]``.

Each Gemini event holds the next piece of each candidate: its text, whole function calls, and on
the last one the finish reason; ``usageMetadata`` grows as it goes, so the last one seen is the call's.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import msgspec

from app.errors import UpstreamInvalidResponse
from app.providers.gemini.answer import error_body, finish_reason, parts_of, response_id, usage

_encode = msgspec.json.encode
_decode = msgspec.json.decode
DONE = b"data: [DONE]\n\n"
# One event's bytes at most while it is incomplete: an upstream that never ends an event does not
# grow the buffer without bound (the relay bounds each translated event again, at max_sse_event_bytes).
MAX_PENDING = 32 * 1024 * 1024


class GeminiStream:
    def __init__(self, model: str, include_usage: bool) -> None:
        self._model = model
        self._include_usage = include_usage
        self._pending = b""
        self._rid: str | None = None
        self._created = int(time.time())
        self._usage: dict[str, Any] | None = None
        self._started: set[int] = set()  # candidates whose role was sent
        self._calls: dict[int, int] = {}  # candidate -> tool calls so far

    def feed(self, data: bytes) -> bytes:
        self._pending = (self._pending + data).replace(b"\r\n", b"\n")
        *events, self._pending = self._pending.split(b"\n\n")
        if len(self._pending) > MAX_PENDING:
            raise UpstreamInvalidResponse(f"a Gemini stream event is over {MAX_PENDING} bytes")
        return b"".join(self._event(e) for e in events)

    def close(self) -> bytes:
        tail = self._event(self._pending) if self._pending.strip() else b""
        if self._include_usage and self._usage is not None:
            tail += _sse({**self._base(), "choices": [], "usage": self._usage})
        return tail + DONE

    def _event(self, raw: bytes) -> bytes:
        lines = [line[5:].lstrip(b" ") for line in raw.split(b"\n") if line.startswith(b"data:")]
        if not lines:
            return b""
        try:
            data = _decode(b"\n".join(lines))
        except msgspec.DecodeError:
            return b""  # nothing an OpenAI client could read either; the call goes on
        if not isinstance(data, dict):
            return b""
        if "error" in data:  # Google's error object carries its HTTP status in ``code``
            code = data["error"].get("code") if isinstance(data["error"], dict) else None
            status = code if isinstance(code, int) and 400 <= code < 600 else 500
            return b"data: " + error_body(status, _encode(data)) + b"\n\n"
        return self._chunks(data)

    def _chunks(self, data: dict[str, Any]) -> bytes:
        if self._rid is None:
            self._rid = response_id(data)
            version = data.get("modelVersion")
            self._model = version if isinstance(version, str) and version else self._model
        found = usage(data.get("usageMetadata"))
        self._usage = found or self._usage
        candidates = data.get("candidates") if isinstance(data.get("candidates"), list) else []
        out = [self._delta(c, i) for i, c in enumerate(candidates) if isinstance(c, Mapping)]
        if not candidates and _blocked(data):
            out.append(_sse({**self._base(), "choices": [
                {"index": 0, "delta": {"role": "assistant"}, "finish_reason": "content_filter"}]}))
        return b"".join(out)

    def _delta(self, candidate: Mapping[str, Any], position: int) -> bytes:
        index = candidate.get("index") if isinstance(candidate.get("index"), int) else position
        text, calls = parts_of(candidate, self._rid or "", index, self._calls.get(index, 0))
        delta: dict[str, Any] = {}
        if index not in self._started:
            self._started.add(index)
            delta["role"] = "assistant"
        if text:
            delta["content"] = text
        if calls:
            delta["tool_calls"] = calls
            self._calls[index] = self._calls.get(index, 0) + len(calls)
        reason = finish_reason(candidate.get("finishReason"), bool(self._calls.get(index)))
        if not delta and reason is None:
            return b""
        return _sse({**self._base(), "choices": [{"index": index, "delta": delta, "finish_reason": reason}]})

    def _base(self) -> dict[str, Any]:
        return {"id": f"chatcmpl-{self._rid or ''}", "object": "chat.completion.chunk", "created": self._created,
                "model": self._model}


def _blocked(data: Mapping[str, Any]) -> bool:
    feedback = data.get("promptFeedback")
    return isinstance(feedback, Mapping) and bool(feedback.get("blockReason"))


def _sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + _encode(chunk) + b"\n\n"
