"""OpenAI chat answers -> Anthropic's: the Message, its event stream and its errors. Pure.

Anthropic counts cached input apart from ``input_tokens``; OpenAI's ``prompt_tokens`` holds them all
(``app.providers.anthropic.answer.to_usage`` is the other way): so ``input_tokens`` is the prompt less
the cache reads and writes. A stream's ``message_start`` carries an estimate of the input (the chat
stream says its usage only at the end); its ``message_delta`` carries the counts, which the SDK takes.
"""

from __future__ import annotations

import secrets
from typing import Any

import msgspec

_encode = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}
# By status (docs.claude.com/en/api/errors); other 4xx are invalid_request_error, other 5xx api_error.
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
               529: "overloaded_error"}
KNOWN_TYPES = frozenset(ERROR_TYPES.values())


def stop_reason(finish: Any) -> str:
    return STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"


def usage(chat_usage: Any) -> dict[str, int]:
    chat_usage = chat_usage if isinstance(chat_usage, dict) else {}
    details = chat_usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    read = _count(details.get("cached_tokens"))
    written = _count(details.get("cache_creation_tokens")) or _count(chat_usage.get("cache_creation_input_tokens"))
    prompt = _count(chat_usage.get("prompt_tokens"))
    return {"input_tokens": max(prompt - read - written, 0),
            "output_tokens": _count(chat_usage.get("completion_tokens")),
            "cache_read_input_tokens": read, "cache_creation_input_tokens": written}


def _count(value: Any) -> int:
    return value if type(value) is int and value >= 0 else 0


def message_id(chat_id: Any) -> str:
    if isinstance(chat_id, str) and chat_id:
        return chat_id if chat_id.startswith("msg_") else "msg_" + chat_id
    return "msg_" + secrets.token_hex(12)


def to_message(chat: dict[str, Any], model: str) -> dict[str, Any]:
    """A chat completion's first choice as a Message; ``model`` when the answer names none."""
    choices = chat.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    reply = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    content = [{"type": "text", "text": text} for text in (_text(reply.get("content")),) if text]
    calls = reply.get("tool_calls")
    content += [tool_use(call) for call in calls if isinstance(call, dict)] if isinstance(calls, list) else []
    answered = chat.get("model")
    return {"id": message_id(chat.get("id")), "type": "message", "role": "assistant",
            "model": answered if isinstance(answered, str) and answered else model, "content": content,
            "stop_reason": stop_reason(choice.get("finish_reason")), "stop_sequence": None,
            "usage": usage(chat.get("usage"))}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts, as some providers answer
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def tool_use(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    call_id, name = call.get("id"), function.get("name")
    return {"type": "tool_use", "id": call_id if isinstance(call_id, str) and call_id else _tool_id(),
            "name": name if isinstance(name, str) else "", "input": tool_input(function.get("arguments"))}


def _tool_id() -> str:
    return "toolu_" + secrets.token_hex(12)


def tool_input(arguments: Any) -> dict[str, Any]:
    """OpenAI's arguments are JSON text, Anthropic's ``input`` an object: text that is not one is kept
    under ``arguments`` rather than lost."""
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = _decode.decode(arguments)
    except msgspec.DecodeError:
        value = None
    return value if isinstance(value, dict) else {"arguments": arguments}


def error_type(status: int | None, kind: Any = None) -> str:
    if isinstance(kind, str) and kind in KNOWN_TYPES:
        return kind
    if status is None:
        return "invalid_request_error" if kind == "invalid_request_error" else "api_error"
    return ERROR_TYPES.get(status) or ("invalid_request_error" if status < 500 else "api_error")


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _encode.encode(data) + b"\n\n"


class MessagesStream:
    """Chat chunks -> Anthropic's events: message_start and a ping first, a content block per run of text
    and per tool call, message_delta (stop reason, counts) and message_stop at the end. Only the first
    choice is said (a Message has one)."""

    def __init__(self, model: str, input_estimate: int) -> None:
        self._model = model
        self._estimate = input_estimate
        self._started = False
        self._open: int | None = None  # the Anthropic index of the block still open
        self._blocks = 0
        self._text_block: int | None = None  # the open block, when it is text
        self._tools: dict[int, int] = {}  # the chat tool-call index -> its block's index
        self._stop: str | None = None
        self._usage: Any = None

    def feed(self, chunk: dict[str, Any]) -> bytes:
        out = self._start(chunk)
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) in (0, None):
                out += self._choice(choice)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        return out

    def error(self, error: dict[str, Any]) -> bytes:
        message = error.get("message")
        kind = error_type(None, error.get("type"))
        return event("error", error_body(kind, message if isinstance(message, str) else "error during the stream"))

    def close(self) -> bytes:
        out = self._start({}) + self._close_block()
        counts = usage(self._usage)
        out += event("message_delta", {"type": "message_delta",
                                       "delta": {"stop_reason": self._stop or "end_turn", "stop_sequence": None},
                                       "usage": counts})
        return out + event("message_stop", {"type": "message_stop"})

    def _start(self, chunk: dict[str, Any]) -> bytes:
        if self._started:
            return b""
        self._started = True
        model = chunk.get("model") if isinstance(chunk.get("model"), str) and chunk.get("model") else self._model
        message = {"id": message_id(chunk.get("id")), "type": "message", "role": "assistant", "model": model,
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": self._estimate, "output_tokens": 0}}
        return event("message_start", {"type": "message_start", "message": message}) + \
            event("ping", {"type": "ping"})

    def _choice(self, choice: dict[str, Any]) -> bytes:
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        out = b""
        text = delta.get("content")
        if isinstance(text, str) and text:
            out += self._text(text)
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict):
                out += self._call(call)
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            self._stop = stop_reason(reason)
        return out

    def _text(self, text: str) -> bytes:
        out = b""
        if self._text_block is None:
            out = self._open_block({"type": "text", "text": ""})
            self._text_block = self._open
        return out + event("content_block_delta", {"type": "content_block_delta", "index": self._text_block,
                                                   "delta": {"type": "text_delta", "text": text}})

    def _call(self, call: dict[str, Any]) -> bytes:
        index = call.get("index") if type(call.get("index")) is int else 0
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        out = b""
        if index not in self._tools:
            call_id, name = call.get("id"), function.get("name")
            out = self._open_block({"type": "tool_use", "id": call_id if isinstance(call_id, str) and call_id
                                    else _tool_id(), "name": name if isinstance(name, str) else "", "input": {}})
            self._tools[index] = self._blocks - 1
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            # An earlier call's block may be closed by now (interleaved calls, which OpenAI streams do
            # not send): its delta still names its index, which the SDK's accumulator follows.
            out += event("content_block_delta", {"type": "content_block_delta", "index": self._tools[index],
                                                 "delta": {"type": "input_json_delta", "partial_json": arguments}})
        return out

    def _open_block(self, block: dict[str, Any]) -> bytes:
        out = self._close_block()
        self._open = self._blocks
        self._blocks += 1
        return out + event("content_block_start", {"type": "content_block_start", "index": self._open,
                                                   "content_block": block})

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open, self._text_block = self._open, None, None
        return event("content_block_stop", {"type": "content_block_stop", "index": index})
