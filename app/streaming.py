"""Server-sent-event pass-through that accumulates what the span needs from a streamed answer.

Upstream bytes are re-cut on event boundaries and forwarded unchanged, except the usage-only
chunk the gateway asked for on the client's behalf (``include_usage``) when the client did not
ask for it itself.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app import semconv as sc
from app.spans import Attributes, to_json, usage_attributes

_decode = msgspec.json.decode
_DONE = b"[DONE]"


class StreamAccumulator:
    def __init__(self, operation: str, *, keep_usage_chunk: bool, capture_content: bool) -> None:
        self.operation = operation
        self.keep_usage_chunk = keep_usage_chunk
        self.capture_content = capture_content
        self.response_id: str | None = None
        self.model: str | None = None
        self.usage: dict[str, Any] | None = None
        self.finish: dict[int, str] = {}
        self.text: dict[int, list[str]] = {}
        self.tool_calls: dict[int, dict[int, dict[str, Any]]] = {}
        self.done = False
        self.chunks = 0
        self._buffer = b""

    def feed(self, data: bytes) -> bytes:
        """Take upstream bytes; return the complete events to forward to the client."""
        # Normalise CRLF before looking for the blank line: upstreams built on sse-starlette frame
        # events with \r\n\r\n, which never contains \n\n. A \r\n split across reads joins here.
        self._buffer = (self._buffer + data).replace(b"\r\n", b"\n")
        if b"\n\n" not in self._buffer:
            return b""
        *events, self._buffer = self._buffer.split(b"\n\n")
        kept = [event for event in events if self._take(event)]
        return b"".join(event + b"\n\n" for event in kept)

    def flush(self) -> bytes:
        rest, self._buffer = self._buffer, b""
        return rest if rest.strip() else b""

    def _take(self, event: bytes) -> bool:
        payload = b"".join(line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:"))
        if not payload:
            return bool(event.strip())
        if payload == _DONE:
            self.done = True
            return True
        try:
            chunk = _decode(payload)
        except msgspec.DecodeError:
            return True  # not ours to judge; forward as is
        if not isinstance(chunk, dict):
            return True
        self.chunks += 1
        return self._update(chunk)

    def _update(self, chunk: dict[str, Any]) -> bool:
        self.response_id = self.response_id or chunk.get("id")
        self.model = self.model or chunk.get("model")
        choices = chunk.get("choices") or []
        if chunk.get("usage"):
            self.usage = chunk["usage"]
            if not choices and not self.keep_usage_chunk:
                return False
        for choice in choices:
            self._choice(choice)
        return True

    def _choice(self, choice: dict[str, Any]) -> None:
        index = choice.get("index", 0)
        if choice.get("finish_reason"):
            self.finish[index] = choice["finish_reason"]
        if not self.capture_content:
            return
        delta = choice.get("delta") or {}
        piece = delta.get("content") if self.operation == sc.OP_CHAT else choice.get("text")
        if piece:
            self.text.setdefault(index, []).append(piece)
        for call in delta.get("tool_calls") or ():
            slot = self.tool_calls.setdefault(index, {}).setdefault(call.get("index", 0), {"arguments": ""})
            function = call.get("function") or {}
            slot["id"] = call.get("id") or slot.get("id")
            slot["name"] = function.get("name") or slot.get("name")
            slot["arguments"] += function.get("arguments") or ""

    def attributes(self) -> Attributes:
        attrs: Attributes = {}
        if self.response_id:
            attrs[sc.RESPONSE_ID] = self.response_id
        if self.model:
            attrs[sc.RESPONSE_MODEL] = self.model
        if self.finish:
            attrs[sc.RESPONSE_FINISH_REASONS] = tuple(self.finish[i] for i in sorted(self.finish))
        attrs.update(usage_attributes(self.usage))
        if self.capture_content:
            attrs[sc.OUTPUT_MESSAGES] = to_json(self._messages())
        return attrs

    def _messages(self) -> list[dict[str, Any]]:
        indexes = sorted(set(self.text) | set(self.finish) | set(self.tool_calls)) or [0]
        out = []
        for i in indexes:
            parts: list[dict[str, Any]] = [{"type": "text", "content": "".join(self.text.get(i, []))}]
            for call in self.tool_calls.get(i, {}).values():
                parts.append({"type": "tool_call", **call})
            out.append({"role": "assistant", "parts": parts, "finish_reason": self.finish.get(i, "")})
        return out
