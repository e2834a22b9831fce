"""ConverseStream's AWS event stream (``application/vnd.amazon.eventstream``) -> OpenAI SSE chunks.

The binary framing (prelude, headers, payload, CRCs) is decoded by botocore's own parser. The
events, in order: ``messageStart``, per content block ``contentBlockStart`` (tool calls only),
``contentBlockDelta`` (text, tool input, reasoning), ``contentBlockStop``, then ``messageStop`` (the
stop reason) and ``metadata`` (usage). An ``exception`` message (``throttlingException``...), a
frame that does not decode, or a stream that ends before ``messageStop`` ends the answer with an
OpenAI error event (``data: {"error": ...}``), which the relay records as the upstream's error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec
from botocore.eventstream import EventStreamBuffer, ParserError

from app.providers.bedrock.answer import EXCEPTION_STATUS, finish_reason, new_id, openai_type, usage

DONE = b"data: [DONE]\n\n"


class ConverseStreamTranslator:
    def __init__(self, model: str, include_usage: bool) -> None:
        self._buffer = EventStreamBuffer()
        self._model = model
        self._include_usage = include_usage
        self._id, self._created = new_id(), int(time.time())
        self._tools: dict[int, int] = {}  # Converse content block index -> OpenAI tool call index
        self._stopped = False  # messageStop seen
        self._failed = False  # an error event was sent: nothing more follows it
        self._handlers: dict[str, Callable[[dict[str, Any]], bytes]] = {
            "messageStart": self._message_start, "contentBlockStart": self._block_start,
            "contentBlockDelta": self._block_delta, "messageStop": self._message_stop, "metadata": self._metadata}

    def feed(self, data: bytes) -> bytes:
        if self._failed:
            return b""
        self._buffer.add_data(data)
        out = bytearray()
        try:
            for message in self._buffer:
                out += self._on_message(message.headers, message.payload)
                if self._failed:
                    break
        except ParserError as exc:  # a bad CRC or length: the framing is lost, so is the rest
            out += self._error(502, f"Bedrock's event stream could not be read ({type(exc).__name__})",
                               "upstream_invalid_response")
        return bytes(out)

    def close(self) -> bytes:
        if self._failed:
            return b""
        if not self._stopped:
            return self._error(502, "Bedrock's event stream ended before messageStop", "upstream_invalid_response")
        return DONE

    def _on_message(self, headers: dict[str, Any], payload: bytes) -> bytes:
        kind = headers.get(":message-type")
        if kind == "exception":
            name = str(headers.get(":exception-type") or "")
            return self._exception(name, payload)
        if kind == "error":  # the framing's own error: :error-code and :error-message headers
            return self._error(502, str(headers.get(":error-message") or "stream error"),
                               str(headers.get(":error-code") or "upstream_error"))
        handler = self._handlers.get(str(headers.get(":event-type")))
        if handler is None:  # contentBlockStop, and events newer than this translator
            return b""
        try:
            event = msgspec.json.decode(payload)
        except msgspec.DecodeError:
            return self._error(502, "Bedrock sent an event that is not JSON", "upstream_invalid_response")
        return handler(event) if isinstance(event, dict) else b""

    def _exception(self, name: str, payload: bytes) -> bytes:
        try:
            data = msgspec.json.decode(payload)
        except msgspec.DecodeError:
            data = None
        message = data.get("message") if isinstance(data, dict) else None
        exception = name[:1].upper() + name[1:]  # throttlingException -> ThrottlingException
        status = EXCEPTION_STATUS.get(exception, 500)
        return self._error(status, message if isinstance(message, str) else exception or "stream exception",
                           exception or None)

    def _error(self, status: int, message: str, code: str | None) -> bytes:
        self._failed = True
        error = {"message": message, "type": openai_type(status), "code": code}
        return b"data: " + msgspec.json.encode({"error": error}) + b"\n\n"

    # --- events -------------------------------------------------------------------------------------

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + msgspec.json.encode(chunk) + b"\n\n"

    def _message_start(self, event: dict[str, Any]) -> bytes:
        return self._chunk({"role": "assistant", "content": ""})

    def _block_start(self, event: dict[str, Any]) -> bytes:
        use = (event.get("start") or {}).get("toolUse")
        if not isinstance(use, dict):
            return b""
        index = self._tools[_index(event)] = len(self._tools)
        call = {"index": index, "id": use.get("toolUseId") or "", "type": "function",
                "function": {"name": use.get("name") or "", "arguments": ""}}
        return self._chunk({"tool_calls": [call]})

    def _block_delta(self, event: dict[str, Any]) -> bytes:
        delta = event.get("delta")
        if not isinstance(delta, dict):
            return b""
        if isinstance(delta.get("text"), str):
            return self._chunk({"content": delta["text"]})
        use = delta.get("toolUse")
        if isinstance(use, dict) and _index(event) in self._tools:
            call = {"index": self._tools[_index(event)], "function": {"arguments": str(use.get("input") or "")}}
            return self._chunk({"tool_calls": [call]})
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict) and isinstance(reasoning.get("text"), str):
            return self._chunk({"reasoning_content": reasoning["text"]})
        return b""

    def _message_stop(self, event: dict[str, Any]) -> bytes:
        self._stopped = True
        return self._chunk({}, finish_reason(event.get("stopReason")))

    def _metadata(self, event: dict[str, Any]) -> bytes:
        if not self._include_usage:
            return b""
        chunk = {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model,
                 "choices": [], "usage": usage(event.get("usage"))}
        return b"data: " + msgspec.json.encode(chunk) + b"\n\n"


def _index(event: dict[str, Any]) -> int:
    index = event.get("contentBlockIndex")
    return index if type(index) is int else -1
