"""Anthropic's answers -> OpenAI's: a Message as a chat completion, its usage, its stop reason, its errors.

Pure (the caller passes ``created``), so Anthropic-on-Vertex reuses them as they are.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.errors import UpstreamInvalidResponse

# Anthropic's stop_reason -> OpenAI's finish_reason (platform.claude.com/docs/en/api/handling-stop-reasons).
# pause_turn (a server-tool loop paused) ends the answer as it is; the client may send it back to go on.
FINISH_REASONS = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
    "model_context_window_exceeded": "length", "tool_use": "tool_calls", "refusal": "content_filter",
}
_decode = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def to_usage(usage: Any) -> dict[str, Any]:
    """Anthropic counts cached input apart from ``input_tokens``; OpenAI's ``prompt_tokens`` holds them all,
    with the cache reads in ``cached_tokens`` and the cache writes in ``cache_creation_tokens``."""
    usage = usage if isinstance(usage, dict) else {}
    fresh, read, written = (_count(usage, key) for key in
                            ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))
    prompt, completion = fresh + read + written, _count(usage, "output_tokens")
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                           "total_tokens": prompt + completion,
                           "prompt_tokens_details": {"cached_tokens": read, "cache_creation_tokens": written}}
    details = usage.get("output_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("thinking_tokens"), int):
        out["completion_tokens_details"] = {"reasoning_tokens": details["thinking_tokens"]}
    return out


def _count(usage: dict[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if type(value) is int and value >= 0 else 0


def to_chat_completion(message: dict[str, Any], created: int) -> dict[str, Any]:
    """A Message (``{"type": "message", "content": [...], ...}``) as an OpenAI chat completion."""
    content = message.get("content")
    if not isinstance(content, list):
        raise UpstreamInvalidResponse("the Anthropic answer has no content array")
    texts, thinking, calls = [], [], []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            thinking.append(block["thinking"])
        elif kind == "tool_use":
            calls.append(tool_call(block))
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if thinking:
        reply["reasoning_content"] = "".join(thinking)
    if calls:
        reply["tool_calls"] = calls
    return {"id": str(message.get("id") or ""), "object": "chat.completion", "created": created,
            "model": str(message.get("model") or ""),
            "choices": [{"index": 0, "message": reply, "finish_reason": finish_reason(message.get("stop_reason")),
                         "logprobs": None}],
            "usage": to_usage(message.get("usage"))}


def tool_call(block: dict[str, Any]) -> dict[str, Any]:
    """A ``tool_use`` block -> an OpenAI tool call, its input as JSON text."""
    arguments = block.get("input")
    return {"id": str(block.get("id") or ""), "type": "function",
            "function": {"name": str(block.get("name") or ""),
                         "arguments": _encode.encode(arguments if arguments is not None else {}).decode()}}


def answer_bytes(body: bytes, created: int) -> bytes:
    """A 2xx body -> OpenAI answer JSON; ``UpstreamInvalidResponse`` when it is not a Message."""
    try:
        message = _decode.decode(body)
    except msgspec.DecodeError:
        raise UpstreamInvalidResponse("the Anthropic answer is not JSON") from None
    if not isinstance(message, dict):
        raise UpstreamInvalidResponse("the Anthropic answer is not a JSON object")
    return _encode.encode(to_chat_completion(message, created))


def error_object(error: Any, fallback: str) -> dict[str, Any]:
    """Anthropic's ``{"type", "message"}`` -> OpenAI's error object; its type is the code too, so
    ``rate_limit_error``, ``authentication_error``... reach the client, the span and ``/metrics``."""
    error = error if isinstance(error, dict) else {}
    message = error.get("message")
    kind = error.get("type") if isinstance(error.get("type"), str) else None
    return {"message": message if isinstance(message, str) and message else fallback, "type": kind, "code": kind}


def error_bytes(status: int, body: bytes) -> bytes:
    """A 4xx/5xx body (``{"type": "error", "error": {...}}``, or a proxy's HTML 413) -> OpenAI error JSON."""
    try:
        data = _decode.decode(body) if body else None
    except msgspec.DecodeError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    fallback = body[:200].decode(errors="replace").strip() if body and data is None else f"HTTP {status}"
    return _encode.encode({"error": error_object(error, fallback or f"HTTP {status}")})
