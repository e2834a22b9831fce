"""An OpenAI Response object -> the chat completion it amounts to, for a Responses call passed through to
OpenAI (``app.dialects.responses_native``): the client keeps OpenAI's bytes, while the span, metrics,
the hooks' success and the callbacks read chat, as for every other call.

The inverse of ``responses_answer``: ``message`` items' ``output_text`` (and ``refusal``) parts become the
message's content, ``function_call`` items its tool calls, ``reasoning`` summaries its ``reasoning_content``;
``usage`` ``input_tokens``/``output_tokens`` become ``prompt_tokens``/``completion_tokens`` with their details;
``status`` becomes the finish reason (``incomplete`` by ``max_output_tokens`` is ``length``). Pure, and it
never raises on a Response it cannot read: what is missing is left out.

``ChatChunks`` does the same for a streamed Response, event by event
(platform.openai.com/docs/api-reference/responses-streaming): text, refusal and reasoning deltas become
chunk deltas, a ``function_call`` item's ``output_item.added`` and ``function_call_arguments.delta`` a tool
call's, ``response.completed``/``incomplete`` the finish reason and the usage chunk; ``response.failed``
and ``error`` OpenAI's chat error event, which ends the stream.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.errors import UpstreamInvalidResponse

# One event's bytes at most (``response.completed`` repeats the whole output): without a bound an upstream
# that never ends an event would grow the buffer without end.
MAX_EVENT_BYTES = 8 * 1024 * 1024
DONE = b"data: [DONE]\n\n"
_decode = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()
_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}


def chat_of_response(response: dict[str, Any]) -> dict[str, Any]:
    items = [item for item in _list(response.get("output")) if isinstance(item, dict)]
    message = _message(items)
    chat: dict[str, Any] = {"id": response.get("id"), "object": "chat.completion",
                            "created": response.get("created_at"), "model": response.get("model"),
                            "choices": [{"index": 0, "message": message,
                                         "finish_reason": finish_reason(response, message)}]}
    usage = chat_usage(response.get("usage"))
    if usage is not None:
        chat["usage"] = usage
    return chat


def finish_reason(response: dict[str, Any], message: dict[str, Any]) -> str | None:
    status = response.get("status")
    if status == "incomplete":
        details = response.get("incomplete_details")
        return _INCOMPLETE.get(details.get("reason") if isinstance(details, dict) else None, "length")
    if status != "completed":
        return None  # failed, cancelled, in progress: no chat finish reason says it
    return "tool_calls" if message.get("tool_calls") else "stop"


def chat_usage(usage: Any) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return None
    prompt, completion = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                           "total_tokens": _int(usage.get("total_tokens")) or prompt + completion}
    for theirs, ours, key in (("input_tokens_details", "prompt_tokens_details", "cached_tokens"),
                              ("output_tokens_details", "completion_tokens_details", "reasoning_tokens")):
        details = usage.get(theirs)
        if isinstance(details, dict) and isinstance(details.get(key), int):
            out[ours] = {key: details[key]}
    return out


def _message(items: list[dict[str, Any]]) -> dict[str, Any]:
    texts, refusals, reasoning = [], [], []
    calls = [_tool_call(item) for item in items if item.get("type") == "function_call"]
    for item in items:
        if item.get("type") == "message":
            for part in (p for p in _list(item.get("content")) if isinstance(p, dict)):
                if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
                    refusals.append(part["refusal"])
        elif item.get("type") == "reasoning":
            reasoning += [s["text"] for s in _list(item.get("summary")) if isinstance(s, dict)
                          and isinstance(s.get("text"), str)]
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if refusals:
        message["refusal"] = "".join(refusals)
    if reasoning:
        message["reasoning_content"] = "\n".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_call(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item.get("call_id") or item.get("id"), "type": "function",
            "function": {"name": item.get("name"), "arguments": item.get("arguments") or ""}}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class ChatChunks:
    """One streamed Response read as chat chunks (``app.providers.native.StreamTranslator``, with ``failed``)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._head: dict[str, Any] = {"id": "", "object": "chat.completion.chunk", "created": 0, "model": ""}
        self._tools: dict[Any, int] = {}  # output_index -> chat tool call index
        self._usage: dict[str, Any] | None = None
        self._ended = self.failed = False
        self.sequence = -1  # the last event's sequence_number

    def feed(self, data: bytes) -> bytes:
        if self.failed:
            return b""
        buffer = self._buffer + data
        if b"\r" in buffer:  # CRLF framing; a pair may straddle two reads, so the joined bytes are normalised
            buffer = buffer.replace(b"\r\n", b"\n")
        out: list[bytes] = []
        pos = 0
        while not self.failed and (end := buffer.find(b"\n\n", pos)) != -1:
            out.extend(self._event(buffer[pos:end]))
            pos = end + 2
        self._buffer = buffer[pos:]
        if len(self._buffer) > MAX_EVENT_BYTES:
            raise UpstreamInvalidResponse(f"a Responses stream event is larger than {MAX_EVENT_BYTES} bytes")
        return b"".join(out)

    def close(self) -> bytes:
        """The usage chunk and ``[DONE]``, only after the Response ended: a stream cut short stays cut."""
        if not self._ended or self.failed:
            return b""
        usage = _sse({**self._head, "choices": [], "usage": self._usage}) if self._usage is not None else b""
        return usage + DONE

    def _event(self, raw: bytes) -> list[bytes]:
        data = b"\n".join(line[5:].lstrip(b" ") for line in raw.split(b"\n") if line.startswith(b"data:"))
        if not data:
            return []  # a comment or an event: line alone
        try:
            event = _decode.decode(data)
        except msgspec.DecodeError:
            raise UpstreamInvalidResponse("a Responses stream event is not JSON") from None
        if not isinstance(event, dict):
            raise UpstreamInvalidResponse("a Responses stream event is not an object")
        handler = _HANDLERS.get(event.get("type"))
        out = handler(self, event) if handler is not None else []
        if not self.failed and isinstance(event.get("sequence_number"), int):  # a failure's event is not passed on
            self.sequence = event["sequence_number"]
        return out

    def _started(self, event: dict[str, Any]) -> list[bytes]:
        response = event.get("response")
        if isinstance(response, dict):
            self._head.update({"id": response.get("id") or "", "created": _int(response.get("created_at")),
                               "model": response.get("model") or ""})
        return []

    def _delta(self, event: dict[str, Any]) -> list[bytes]:
        field = _DELTAS[event["type"]]
        piece = event.get("delta")
        return [self._chunk({field: piece})] if isinstance(piece, str) and piece else []

    def _item(self, event: dict[str, Any]) -> list[bytes]:
        item = event.get("item")
        if not isinstance(item, dict) or item.get("type") != "function_call":
            return []
        index = self._tools[event.get("output_index")] = len(self._tools)
        call = {"index": index, "id": item.get("call_id") or item.get("id"), "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments") or ""}}
        return [self._chunk({"tool_calls": [call]})]

    def _arguments(self, event: dict[str, Any]) -> list[bytes]:
        index, piece = self._tools.get(event.get("output_index")), event.get("delta")
        if index is None or not isinstance(piece, str) or not piece:
            return []
        return [self._chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})]

    def _ended_event(self, event: dict[str, Any]) -> list[bytes]:
        response = event.get("response") if isinstance(event.get("response"), dict) else {}
        self._ended = True
        self._usage = chat_usage(response.get("usage"))
        finish = finish_reason({"status": "completed", **response}, {"tool_calls": self._tools})
        return [self._chunk({}, finish)]

    def _failed(self, event: dict[str, Any]) -> list[bytes]:
        """``response.failed`` (its ``response.error``) or ``error``: OpenAI's chat error event."""
        self.failed = True
        response = event.get("response")
        error = response.get("error") if isinstance(response, dict) else event
        error = error if isinstance(error, dict) else {}
        fields = {"message": error.get("message") or "the Responses stream failed", "type": "api_error",
                  "code": error.get("code"), "param": error.get("param")}
        return [_sse({"error": fields})]

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse({**self._head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


_DELTAS = {"response.output_text.delta": "content", "response.refusal.delta": "refusal",
           "response.reasoning_summary_text.delta": "reasoning_content",
           "response.reasoning_text.delta": "reasoning_content"}
_HANDLERS = {
    "response.created": ChatChunks._started, **dict.fromkeys(_DELTAS, ChatChunks._delta),
    "response.output_item.added": ChatChunks._item,
    "response.function_call_arguments.delta": ChatChunks._arguments,
    "response.completed": ChatChunks._ended_event, "response.incomplete": ChatChunks._ended_event,
    "response.failed": ChatChunks._failed, "error": ChatChunks._failed,
}


def _sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + _encode.encode(chunk) + b"\n\n"
