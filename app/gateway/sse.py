"""Server-sent-event pass-through that accumulates what the span needs from a streamed answer.

Upstream bytes are re-cut on event boundaries and forwarded with LF line endings, except the
usage-only chunk the gateway asked for on the client's behalf (``include_usage``) when the client
did not ask for it itself.

Bounded whatever the upstream sends: each read is scanned once (``feed`` is linear in the bytes
it sees), one event may hold at most ``max_event_bytes``, captured output text stops at
``MAX_CAPTURED_CHARS`` and per-choice tables at ``MAX_INDEX`` entries.

What the upstream gets wrong, and what happens (``null`` is accepted wherever a value is optional):
- relayed unchanged, counted in ``skipped``: ``data`` that is not JSON or not a JSON object (the
  OpenAI clients skip or raise on it themselves; a custom ``event:`` may carry anything), and
  values of the wrong type inside a chunk of the right shape (content that is not a string, as
  providers that stream content parts send; a finish reason, index, id, name or arguments of the
  wrong type). Only the span misses them.
- the stream ends with an OpenAI error event (``error``): a chunk whose structure no OpenAI client
  can read (``choices``, ``delta``, ``tool_calls`` or ``usage`` of the wrong type, a choice or tool
  call that is not an object), or an event over ``max_event_bytes``. Relaying such a chunk would
  hand the client an object that fails later, somewhere in its own code; the error event fails the
  call where it happened and the span says ``upstream_invalid_response``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from app.calls.attributes import Attributes, to_json, usage_attributes
from app.calls.operations import facts
from app.config.settings import DEFAULT_MAX_SSE_EVENT_BYTES
from app.errors import GatewayError, UpstreamError, UpstreamInvalidResponse, UpstreamResponseTooLarge
from app.providers.upstream_errors import metric_label, read_error
from contracts import semconv as sc

_decode = msgspec.json.decode
_DONE = b"[DONE]"
# The span keeps at most 1 MiB per attribute (telemetry.SPAN_LIMITS): text beyond it would be cut anyway.
MAX_CAPTURED_CHARS = 1 << 20
# OpenAI allows n <= 128; an index beyond it would only grow the per-choice tables.
MAX_INDEX = 128
_MAX_FINISH_REASON = 64


def _unchanged(text: str) -> str:
    return text


class StreamAccumulator:
    def __init__(self, operation: str, *, keep_usage_chunk: bool, capture_content: bool,
                 max_event_bytes: int = DEFAULT_MAX_SSE_EVENT_BYTES, assemble: bool = False,
                 on_chunk: Callable[[dict[str, Any]], None] | None = None,
                 scrub: Callable[[str], str] | None = None) -> None:
        """``assemble``: keep the text even when the span may not (hooks read the whole answer);
        ``on_chunk``: called with each decoded chunk; ``scrub``: masks the deployment's secrets in
        an error the upstream sends in the middle of the stream."""
        self.operation = operation
        self.keep_usage_chunk = keep_usage_chunk
        self.capture_content = capture_content
        self._collect = capture_content or assemble
        self._on_chunk = on_chunk
        self._scrub = scrub
        self.created: int | None = None
        self.max_event_bytes = max_event_bytes
        self.response_id: str | None = None
        self.model: str | None = None
        self.usage: dict[str, Any] | None = None
        self.finish: dict[int, str] = {}
        self.text: dict[int, list[str]] = {}
        self.tool_calls: dict[int, dict[int, dict[str, Any]]] = {}
        self.done = False
        self.chunks = 0
        self.skipped = 0
        self.truncated = False
        self.error: GatewayError | None = None  # set once; the stream must end with it
        self.scanned = 0  # bytes searched for an event boundary: linear in the input (tests check it)
        self._captured = 0
        self._pending: list[bytes] = []  # the start of an event whose blank line has not come yet
        self._pending_size = 0
        self._pending_cr = False

    def feed(self, data: bytes) -> bytes:
        """Take upstream bytes; return the complete events to forward to the client. Each byte is
        searched once; after an ``error`` nothing more is read or returned."""
        if self.error is not None:
            return b""
        data = self._normalise(data)
        self.scanned += len(data)
        if data.startswith(b"\n") and self._pending and self._pending[-1].endswith(b"\n"):
            # The blank line was split across two reads: move its first LF over to find it whole.
            self._pending[-1] = self._pending[-1][:-1]
            self._pending_size -= 1
            data = b"\n" + data
        kept: list[bytes] = []
        pos = 0
        while self.error is None and (end := data.find(b"\n\n", pos)) != -1:
            event = self._take_pending(data[pos:end]) if self._pending else data[pos:end]
            pos = end + 2
            if len(event) > self.max_event_bytes:
                self._too_large()
            elif self._take(event):
                kept.append(event)
        if self.error is None and pos < len(data):
            self._pending.append(data[pos:] if pos else data)
            self._pending_size += len(data) - pos
            if self._pending_size > self.max_event_bytes:
                self._too_large()
        if self.error is not None:
            self._pending.clear()
        return b"\n\n".join(kept) + b"\n\n" if kept else b""

    def flush(self) -> bytes:
        """The body ended: a last event without its blank line still counts (and is terminated)."""
        rest = self._take_pending(b"").strip(b"\n")
        if self.error is not None or not rest.strip():
            return b""
        return rest + b"\n\n" if self._take(rest) else b""

    def _normalise(self, data: bytes) -> bytes:
        """CRLF and lone CR become LF (all three end an SSE line), on the new bytes only: upstreams
        built on sse-starlette frame events with \\r\\n\\r\\n, which never contains \\n\\n. A CR at
        the end of a read waits for the next one, which may start with its LF."""
        if self._pending_cr:
            data = b"\r" + data
        self._pending_cr = data.endswith(b"\r")
        if self._pending_cr:
            data = data[:-1]
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        return data

    def _take_pending(self, tail: bytes) -> bytes:
        if not self._pending:
            return tail
        event = b"".join((*self._pending, tail))
        self._pending.clear()
        self._pending_size = 0
        return event

    def _too_large(self) -> None:
        self.error = UpstreamResponseTooLarge(
            f"the upstream sent a server-sent event over {self.max_event_bytes} bytes "
            "(spangate_settings.max_sse_event_bytes); the stream was ended")

    def _upstream_error(self, error: Any) -> bool:
        """An error object in the middle of the stream (providers send ``data: {"error": ...}`` when
        they fail after the 200): the stream ends with it, read as ``app.providers.upstream_errors`` reads an
        error answer (bounded, scrubbed, plain-word type and code), as the span's error."""
        fields = read_error(error, self._scrub or _unchanged)
        message = fields.message or "the upstream sent an error in the middle of the stream"
        self.error = UpstreamError(f"upstream error during the stream: {message}", status=502,
                                   type=fields.type or "upstream_error", code=fields.code, param=fields.param)
        self.error.label = metric_label(fields.code, 502) if fields.code else None
        return False

    def _invalid(self, what: str) -> bool:
        self.error = UpstreamInvalidResponse(f"the upstream sent a stream chunk the gateway cannot relay: {what}")
        return False

    def _take(self, event: bytes) -> bool:
        """Record one event; ``True`` to forward it."""
        if event.startswith(b"data:") and b"\n" not in event:  # nearly every event: one data line
            payload = event[5:].strip()
        else:
            payload = b"".join(line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:"))
        if not payload:
            return bool(event.strip())
        if payload == _DONE:
            self.done = True
            return True
        try:
            chunk = _decode(payload)
        except msgspec.DecodeError:
            chunk = None
        if not isinstance(chunk, dict):
            self.skipped += 1
            return True
        self.chunks += 1
        if self._on_chunk is not None:
            self._on_chunk(chunk)
        return self._update(chunk)

    def _update(self, chunk: dict[str, Any]) -> bool:
        choices, usage = chunk.get("choices"), chunk.get("usage")
        if choices is None and chunk.get("error") is not None:
            return self._upstream_error(chunk["error"])
        if choices is not None and not isinstance(choices, list):
            return self._invalid("'choices' is not a list")
        if usage is not None and not isinstance(usage, dict):
            return self._invalid("'usage' is not an object")
        for choice in choices or ():
            if not isinstance(choice, dict):
                return self._invalid("a choice is not an object")
            if not self._choice(choice):
                return False
        self.response_id = self.response_id or self._string(chunk.get("id"))
        if self.created is None and type(chunk.get("created")) is int:
            self.created = chunk["created"]
        self.model = self.model or self._string(chunk.get("model"))
        if usage:
            self.usage = usage
            if not choices and not self.keep_usage_chunk:
                return False
        return True

    def _choice(self, choice: dict[str, Any]) -> bool:
        delta = choice.get("delta")
        if delta is None:
            delta = {}
        elif not isinstance(delta, dict):
            return self._invalid("a choice's 'delta' is not an object")
        calls = delta.get("tool_calls")
        if calls is not None and not (isinstance(calls, list) and all(isinstance(c, dict) for c in calls)):
            return self._invalid("'tool_calls' is not a list of objects")
        index = self._index(choice.get("index"))
        if index is None:
            return True
        reason = choice.get("finish_reason")
        if reason:
            if isinstance(reason, str) and len(reason) <= _MAX_FINISH_REASON:
                self.finish[index] = reason
            else:
                self.skipped += 1
        if self._collect:
            piece = self._string(delta.get("content") if self.operation == sc.OP_CHAT else choice.get("text"))
            if piece and (piece := self._budget(piece)):
                self.text.setdefault(index, []).append(piece)
            if calls:
                self._capture_calls(self.tool_calls.setdefault(index, {}), calls)
        return True

    def _capture_calls(self, slots: dict[int, dict[str, Any]], calls: list[dict[str, Any]]) -> None:
        for call in calls:
            index = self._index(call.get("index"))
            if index is None:
                continue
            function = call.get("function") or {}
            if not isinstance(function, dict):
                self.skipped += 1
                continue
            slot = slots.setdefault(index, {"arguments": []})
            for key, value in (("id", call.get("id")), ("name", function.get("name"))):
                if not slot.get(key) and (value := self._string(value)):
                    slot[key] = self._budget(value)
            arguments = self._string(function.get("arguments"))
            if arguments and (arguments := self._budget(arguments)):
                slot["arguments"].append(arguments)

    def _index(self, value: Any) -> int | None:
        if value is None:
            return 0
        if type(value) is int and 0 <= value < MAX_INDEX:  # type(): True is an int but not an index
            return value
        self.skipped += 1
        return None

    def _string(self, value: Any) -> str | None:
        if value is None or isinstance(value, str):
            return value
        self.skipped += 1
        return None

    def _budget(self, piece: str) -> str:
        """``piece`` as far as the capture budget allows: a call's memory stays bounded."""
        room = MAX_CAPTURED_CHARS - self._captured
        if len(piece) > room:
            self.truncated = True
            piece = piece[:room]
        self._captured += len(piece)
        return piece

    def attributes(self) -> Attributes:
        attrs: Attributes = {}
        if self.response_id:
            attrs[sc.RESPONSE_ID] = self.response_id
        if self.model:
            attrs[sc.RESPONSE_MODEL] = self.model
        if self.finish:
            attrs[sc.RESPONSE_FINISH_REASONS] = tuple(self.finish[i] for i in sorted(self.finish))
        attrs.update(usage_attributes(self.usage))
        if self.skipped:
            attrs[sc.STREAM_SKIPPED] = self.skipped
        if self.capture_content:
            attrs[sc.OUTPUT_MESSAGES] = to_json(self._messages())
            if self.truncated:
                attrs[sc.OUTPUT_TRUNCATED] = True
        return attrs

    def assembled(self) -> dict[str, Any]:
        """The stream as the complete answer it stands for (``chat.completion`` or ``text_completion``),
        the way a client that did not stream would have got it."""
        indexes = sorted(set(self.text) | set(self.finish) | set(self.tool_calls)) or [0]
        choices = []
        for i in indexes:
            text = "".join(self.text.get(i, []))
            choice: dict[str, Any] = {"index": i, "finish_reason": self.finish.get(i)}
            if self.operation == sc.OP_CHAT:
                message: dict[str, Any] = {"role": "assistant", "content": text}
                calls = [{"id": c.get("id"), "type": "function",
                          "function": {"name": c.get("name"), "arguments": "".join(c["arguments"])}}
                         for _, c in sorted(self.tool_calls.get(i, {}).items())]
                if calls:
                    message["tool_calls"] = calls
                choice["message"] = message
            else:
                choice["text"] = text
            choices.append(choice)
        return {"id": self.response_id, "object": facts(self.operation).answer_object, "created": self.created,
                "model": self.model, "choices": choices, "usage": self.usage}

    def _messages(self) -> list[dict[str, Any]]:
        indexes = sorted(set(self.text) | set(self.finish) | set(self.tool_calls)) or [0]
        out = []
        for i in indexes:
            parts: list[dict[str, Any]] = [{"type": "text", "content": "".join(self.text.get(i, []))}]
            for call in self.tool_calls.get(i, {}).values():
                parts.append({"type": "tool_call", **call, "arguments": "".join(call["arguments"])})
            out.append({"role": "assistant", "parts": parts, "finish_reason": self.finish.get(i, "")})
        return out
