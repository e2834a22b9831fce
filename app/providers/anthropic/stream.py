"""Anthropic's event stream -> OpenAI chat completion chunks, event by event.

Anthropic sends ``event: <type>`` / ``data: {"type": <type>, ...}`` pairs
(platform.claude.com/docs/en/build-with-claude/streaming): ``message_start`` (id, model, input
usage), per content block ``content_block_start`` / ``_delta`` (``text_delta``,
``input_json_delta`` for a tool's input, ``thinking_delta``) / ``_stop``, ``message_delta``
(stop reason, cumulative usage), ``message_stop``; ``ping`` anywhere, ``error`` after the 200.

Bytes are cut anywhere by the network, so events are framed here first. An event the gateway
cannot read ends the stream (``UpstreamInvalidResponse``) rather than dropping answer text unseen.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.errors import UpstreamInvalidResponse
from app.providers.anthropic.answer import error_object, finish_reason, to_usage

# One event's bytes at most: a web search result block is the largest Anthropic sends, far below it;
# without a bound an upstream that never ends an event would grow this buffer without end.
MAX_EVENT_BYTES = 8 * 1024 * 1024
DONE = b"data: [DONE]\n\n"
_decode = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()


class AnthropicStream:
    """One streamed answer (``app.providers.native.StreamTranslator``)."""

    def __init__(self, created: int, include_usage: bool, model: str = "") -> None:
        self._created = created
        self._include_usage = include_usage
        self._buffer = b""
        self._id, self._model = "", model
        self._usage: dict[str, Any] = {}
        self._tools: dict[int, int] = {}  # content block index -> OpenAI tool call index
        self._stopped = self._failed = False

    def feed(self, data: bytes) -> bytes:
        if self._failed:
            return b""
        buffer = self._buffer + data
        if b"\r" in buffer:  # CRLF framing; a pair may straddle two reads, so the joined bytes are normalised
            buffer = buffer.replace(b"\r\n", b"\n")
        out: list[bytes] = []
        pos = 0  # events are read in place: cutting the buffer per event costs quadratic time on big reads
        while not self._failed and (end := buffer.find(b"\n\n", pos)) != -1:
            out.extend(self._event(buffer[pos:end]))
            pos = end + 2
        self._buffer = buffer[pos:]
        if len(self._buffer) > MAX_EVENT_BYTES:
            raise UpstreamInvalidResponse(f"an Anthropic stream event is larger than {MAX_EVENT_BYTES} bytes")
        return b"".join(out)

    @property
    def failed(self) -> bool:
        """Anthropic sent an ``error`` event: the stream ends there."""
        return self._failed

    def close(self) -> bytes:
        """The usage chunk and ``[DONE]``, only after ``message_stop``: a stream cut short stays cut, so the
        gateway records it as ended without ``[DONE]``."""
        if not self._stopped or self._failed:
            return b""
        tail = b""
        if self._include_usage:
            tail = _sse({**self._head(), "choices": [], "usage": to_usage(self._usage)})
        return tail + DONE

    def _event(self, raw: bytes) -> list[bytes]:
        data = b"\n".join(line[5:].lstrip(b" ") for line in raw.split(b"\n") if line.startswith(b"data:"))
        if not data:
            return []  # a comment or an event: line alone
        try:
            event = _decode.decode(data)
        except msgspec.DecodeError:
            raise UpstreamInvalidResponse("an Anthropic stream event is not JSON") from None
        if not isinstance(event, dict):
            raise UpstreamInvalidResponse("an Anthropic stream event is not a JSON object")
        kind = event.get("type")
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None  # new types are skipped, as the SDKs do
        return handler(self, event) if handler is not None else []

    def _head(self) -> dict[str, Any]:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model}

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse({**self._head(), "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    def _message_start(self, event: dict[str, Any]) -> list[bytes]:
        message = event.get("message") if isinstance(event.get("message"), dict) else {}
        self._id = str(message.get("id") or self._id)
        self._model = str(message.get("model") or self._model)
        self._add_usage(message.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, event: dict[str, Any]) -> list[bytes]:
        block = event.get("content_block")
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and block.get("text"):
            return [self._chunk({"content": str(block["text"])})]
        if kind == "tool_use":
            index = self._tools[_index(event)] = len(self._tools)
            call = {"index": index, "id": str(block.get("id") or ""), "type": "function",
                    "function": {"name": str(block.get("name") or ""), "arguments": ""}}
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _block_delta(self, event: dict[str, Any]) -> list[bytes]:
        delta = event.get("delta") if isinstance(event.get("delta"), dict) else {}
        kind = delta.get("type")
        if kind == "text_delta":
            return [self._chunk({"content": str(delta.get("text") or "")})]
        if kind == "thinking_delta":
            return [self._chunk({"reasoning_content": str(delta.get("thinking") or "")})]
        if kind == "input_json_delta":
            index = self._tools.get(_index(event))
            if index is None:
                raise UpstreamInvalidResponse("an Anthropic input_json_delta names no tool_use block")
            call = {"index": index, "function": {"arguments": str(delta.get("partial_json") or "")}}
            return [self._chunk({"tool_calls": [call]})]
        return []  # signature and citation deltas: nothing OpenAI's chunks can carry

    def _message_delta(self, event: dict[str, Any]) -> list[bytes]:
        self._add_usage(event.get("usage"))
        delta = event.get("delta") if isinstance(event.get("delta"), dict) else {}
        if "stop_reason" not in delta:
            return []
        return [self._chunk({}, finish_reason(delta.get("stop_reason")))]

    def _message_stop(self, event: dict[str, Any]) -> list[bytes]:
        self._stopped = True
        return []

    def _error(self, event: dict[str, Any]) -> list[bytes]:
        """An error after the 200 (``overloaded_error``...): OpenAI's error event, which ends the stream."""
        self._failed = True
        return [_sse({"error": error_object(event.get("error"), "the Anthropic stream failed")})]

    def _add_usage(self, usage: Any) -> None:
        """``message_delta`` counts are cumulative: the latest of each count wins."""
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})


def _index(event: dict[str, Any]) -> int:
    index = event.get("index")
    if type(index) is not int:
        raise UpstreamInvalidResponse("an Anthropic content block event has no index")
    return index


def _ignore(stream: AnthropicStream, event: dict[str, Any]) -> list[bytes]:
    return []


_HANDLERS = {
    "message_start": AnthropicStream._message_start, "content_block_start": AnthropicStream._block_start,
    "content_block_delta": AnthropicStream._block_delta, "content_block_stop": _ignore,
    "message_delta": AnthropicStream._message_delta, "message_stop": AnthropicStream._message_stop,
    "ping": _ignore, "error": AnthropicStream._error,
}


def _sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + _encode.encode(chunk) + b"\n\n"
