"""A gateway span read back into the OpenAI shapes webhook-style destinations expect. Pure.

The span carries content in the GenAI v1.41 message shape (``{role, parts: [...]}``, JSON strings)
and request parameters as ``gen_ai.request.*``. Destinations built for LiteLLM's callbacks (the
generic webhook, Athina) expect what the client sent and got: OpenAI ``messages``, a
``ChatCompletion``-like response, ``usage`` with ``prompt_tokens``. This module turns one into the
other, once, for all of them. Nothing is invented: a value the span lacks is left out (or ``None``).
Embedding vectors are never on a span, so an embeddings response has no ``data``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from contracts import semconv as sc

__all__ = ["Attributes", "error_info", "input_messages", "last_user_text", "metadata", "model_parameters",
           "openai_response", "prompt", "usage", "utc_time"]

Attributes = Mapping[str, Any]

# gen_ai.request.* -> the OpenAI request field it came from (app/calls/attributes.py maps the other way).
_PARAMETERS = (
    (sc.REQUEST_TEMPERATURE, "temperature"), (sc.REQUEST_MAX_TOKENS, "max_tokens"), (sc.REQUEST_TOP_P, "top_p"),
    (sc.REQUEST_FREQUENCY_PENALTY, "frequency_penalty"), (sc.REQUEST_PRESENCE_PENALTY, "presence_penalty"),
    (sc.REQUEST_SEED, "seed"), (sc.REQUEST_CHOICE_COUNT, "n"), (sc.REQUEST_STREAM, "stream"),
)
_RESPONSE_OBJECTS = {sc.OP_CHAT: "chat.completion", sc.OP_TEXT_COMPLETION: "text_completion", sc.OP_EMBEDDINGS: "list"}


def model_parameters(attrs: Attributes) -> dict[str, Any]:
    """The request's sampling parameters under their OpenAI names, plus ``user`` (as LiteLLM logs them)."""
    out = {name: attrs[key] for key, name in _PARAMETERS if key in attrs}
    if sc.REQUEST_STOP_SEQUENCES in attrs:
        out["stop"] = list(attrs[sc.REQUEST_STOP_SEQUENCES])
    if sc.REQUEST_ENCODING_FORMATS in attrs:
        out["encoding_format"] = attrs[sc.REQUEST_ENCODING_FORMATS][0]
    if sc.END_USER in attrs:
        out["user"] = attrs[sc.END_USER]
    return out


def usage(attrs: Attributes) -> dict[str, Any] | None:
    """OpenAI ``usage``; ``None`` when the span reports no token counts."""
    prompt_tokens, completion_tokens = attrs.get(sc.USAGE_INPUT_TOKENS), attrs.get(sc.USAGE_OUTPUT_TOKENS)
    if prompt_tokens is None and completion_tokens is None:
        return None
    out: dict[str, Any] = {"prompt_tokens": prompt_tokens or 0, "completion_tokens": completion_tokens or 0,
                           "total_tokens": (prompt_tokens or 0) + (completion_tokens or 0)}
    if sc.USAGE_CACHE_READ_INPUT_TOKENS in attrs:
        out["prompt_tokens_details"] = {"cached_tokens": attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS]}
    if sc.USAGE_REASONING_OUTPUT_TOKENS in attrs:
        out["completion_tokens_details"] = {"reasoning_tokens": attrs[sc.USAGE_REASONING_OUTPUT_TOKENS]}
    return out


def metadata(attrs: Attributes) -> dict[str, Any]:
    """The request's ``metadata``, keyed as the client sent it (string lists back as lists)."""
    prefix = sc.METADATA_PREFIX
    return {k[len(prefix):]: list(v) if isinstance(v, tuple) else v for k, v in attrs.items() if k.startswith(prefix)}


def input_messages(attrs: Attributes) -> list[dict[str, Any]] | None:
    """The chat request's ``messages`` (system instructions first); ``None`` when content was not captured."""
    messages = _json_list(attrs.get(sc.INPUT_MESSAGES))
    if messages is None:
        return None
    system = _json_list(attrs.get(sc.SYSTEM_INSTRUCTIONS)) or []
    head = [{"role": "system", "content": _content(system)}] if system else []
    return head + [_openai_message(m) for m in messages if isinstance(m, Mapping)]


def prompt(attrs: Attributes) -> Any:
    """What the client sent: chat ``messages``, a completion's prompt, or an embeddings input (a string
    when it was one string, else the list); ``None`` when content was not captured."""
    if attrs.get(sc.OPERATION_NAME) == sc.OP_CHAT:
        return input_messages(attrs)
    messages = _json_list(attrs.get(sc.INPUT_MESSAGES))
    if not messages or not isinstance(messages[0], Mapping):
        return None
    texts = [p.get("content") for p in messages[0].get("parts") or () if isinstance(p, Mapping)]
    return texts[0] if len(texts) == 1 else texts


def last_user_text(messages: Any) -> str | None:
    """The last user message's text: what RAG evaluators call the user's query."""
    if isinstance(messages, str):
        return messages
    for message in reversed(messages or []):
        if isinstance(message, Mapping) and message.get("role") == "user" and isinstance(message.get("content"), str):
            return message["content"]
    return None


def openai_response(span: ReadableSpan, attrs: Attributes) -> dict[str, Any] | None:
    """A ``ChatCompletion``-like object (``text_completion``, or a ``list`` for embeddings); ``None`` for
    a failed call. ``choices`` only when the output was captured."""
    if span.status.status_code is StatusCode.ERROR:
        return None
    operation = attrs.get(sc.OPERATION_NAME, sc.OP_CHAT)
    out: dict[str, Any] = {"id": attrs.get(sc.RESPONSE_ID), "object": _RESPONSE_OBJECTS.get(operation, operation),
                           "created": (span.start_time or 0) // 10**9,
                           "model": attrs.get(sc.RESPONSE_MODEL) or attrs.get(sc.REQUEST_MODEL)}
    outputs = _json_list(attrs.get(sc.OUTPUT_MESSAGES))
    if outputs is not None:
        out["choices"] = [_choice(i, m, operation) for i, m in enumerate(outputs) if isinstance(m, Mapping)]
    out["usage"] = usage(attrs)
    return out


def error_info(span: ReadableSpan, attrs: Attributes) -> dict[str, Any] | None:
    """``{type, message, status_code}`` of a failed call (what its client was told); else ``None``."""
    if span.status.status_code is not StatusCode.ERROR:
        return None
    return {"type": attrs.get(sc.ERROR_TYPE), "message": span.status.description or "",
            "status_code": attrs.get(sc.HTTP_STATUS_CODE)}


def utc_time(ns: int | None) -> str | None:
    """The seed's timestamp form (``2024-02-15 16:18:44.336280``), in UTC."""
    if ns is None:
        return None
    when = datetime.fromtimestamp(ns // 10**9, tz=UTC).replace(microsecond=ns % 10**9 // 1000)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")


# --- messages ------------------------------------------------------------------------------------


def _json_list(value: Any) -> list[Any] | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, list) else None


def _openai_message(message: Mapping[str, Any]) -> dict[str, Any]:
    parts = [p for p in message.get("parts") or () if isinstance(p, Mapping)]
    reply = next((p for p in parts if p.get("type") == "tool_call_response"), None)
    if reply is not None:
        return {"role": "tool", "tool_call_id": reply.get("id"), "content": reply.get("response")}
    out: dict[str, Any] = {"role": message.get("role", "user"), "content": _content(parts)}
    calls = [_tool_call(p) for p in parts if p.get("type") == "tool_call"]
    if calls:
        out["tool_calls"] = calls
    reasoning = "".join(p.get("content") or "" for p in parts if p.get("type") == "reasoning")
    if reasoning:
        out["reasoning_content"] = reasoning
    return out


def _content(parts: list[Any]) -> Any:
    """One text part -> a string (the common case); several or other kinds -> OpenAI content parts."""
    kept = [p for p in parts if isinstance(p, Mapping) and p.get("type") not in ("tool_call", "reasoning")]
    if not kept:
        return None
    if len(kept) == 1 and kept[0].get("type") == "text":
        return kept[0].get("content")
    return [_content_part(p) for p in kept]


def _content_part(part: Mapping[str, Any]) -> Any:
    if part.get("type") == "text":
        return {"type": "text", "text": part.get("content")}
    try:  # app/calls/attributes.py keeps a non-text part whole, as JSON
        return json.loads(part.get("content") or "null")
    except ValueError:
        return dict(part)


def _tool_call(part: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": part.get("id"), "type": "function",
            "function": {"name": part.get("name"), "arguments": part.get("arguments")}}


def _choice(index: int, message: Mapping[str, Any], operation: str) -> dict[str, Any]:
    finish = message.get("finish_reason") or None
    if operation == sc.OP_TEXT_COMPLETION:
        text = "".join(p.get("content") or "" for p in message.get("parts") or () if isinstance(p, Mapping))
        return {"index": index, "text": text, "finish_reason": finish}
    reply = _openai_message(message)
    reply.setdefault("role", "assistant")
    return {"index": index, "message": reply, "finish_reason": finish}
