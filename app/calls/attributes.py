"""Pure functions from OpenAI request/response bodies to GenAI span attributes.

Nothing here touches a tracer, a client or the environment, so tests call these directly on plain
dicts. Attribute names come from ``contracts.semconv``; content attributes are JSON strings in the v1.41
message shape ``{role, parts: [{type, ...}]}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from app.calls.operations import facts
from contracts import semconv as sc

Attributes = dict[str, Any]

_REQUEST_PARAMS = (
    ("temperature", sc.REQUEST_TEMPERATURE, float),
    ("max_tokens", sc.REQUEST_MAX_TOKENS, int),
    ("max_completion_tokens", sc.REQUEST_MAX_TOKENS, int),
    ("top_p", sc.REQUEST_TOP_P, float),
    ("frequency_penalty", sc.REQUEST_FREQUENCY_PENALTY, float),
    ("presence_penalty", sc.REQUEST_PRESENCE_PENALTY, float),
    ("seed", sc.REQUEST_SEED, int),
    ("n", sc.REQUEST_CHOICE_COUNT, int),
)
_json = msgspec.json.Encoder()
_INT64 = 2**63
# What a span name, a model attribute or an error message takes of a name a client chose: real
# model names are far shorter, and an invented one of 1 MiB went whole into every span and metric.
MAX_CLIENT_NAME = 256
ELLIPSIS = "..."


def to_json(value: Any) -> str:
    return _json.encode(value).decode()


def span_name(operation: str, model: str) -> str:
    return f"{operation} {bounded(model, MAX_CLIENT_NAME)}"


def bounded(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` characters marked as cut."""
    return text if len(text) <= limit else text[:limit] + ELLIPSIS


def request_attributes(body: Mapping[str, Any]) -> Attributes:
    """Recommended ``gen_ai.request.*`` attributes present in an OpenAI request body."""
    attrs: Attributes = {}
    for key, name, kind in _REQUEST_PARAMS:
        value = body.get(key)
        if _fits(value):
            attrs[name] = kind(value)
    stop = body.get("stop")
    if isinstance(stop, str):
        attrs[sc.REQUEST_STOP_SEQUENCES] = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        attrs[sc.REQUEST_STOP_SEQUENCES] = tuple(stop)
    if body.get("stream") is True:
        attrs[sc.REQUEST_STREAM] = True
    encoding = body.get("encoding_format")
    if isinstance(encoding, str):
        attrs[sc.REQUEST_ENCODING_FORMATS] = (encoding,)
    return attrs


def metadata_attributes(metadata: Mapping[str, Any]) -> Attributes:
    """Request ``metadata`` as ``spangate.metadata.<key>``: scalars kept, string lists kept, rest JSON.

    The user and the session also go under the general names every OTLP backend reads (Phoenix,
    Honeycomb, Langfuse, a collector's filters): ``user.id``, ``session.id`` and the GenAI
    ``gen_ai.conversation.id``. The ``spangate.metadata.*`` copies stay for the encoders that map
    the seed's keys onto fields of their own.
    """
    attrs: Attributes = {}
    user_id = _identifier(metadata.get(sc.META_TRACE_USER_ID))
    if user_id is not None:
        attrs[sc.USER_ID] = user_id
    session_id = _identifier(metadata.get(sc.META_SESSION_ID))
    if session_id is not None:
        attrs[sc.SESSION_ID] = attrs[sc.CONVERSATION_ID] = session_id
    for key, value in metadata.items():
        if value is None:
            continue
        if isinstance(value, str | bool | float) or _fits(value):
            attrs[sc.metadata_key(str(key))] = value
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            attrs[sc.metadata_key(str(key))] = tuple(value)
        else:
            attrs[sc.metadata_key(str(key))] = to_json(value)
    return attrs


def _identifier(value: Any) -> str | None:
    """A user or session id as the conventions want it: a non-empty string (a number is spelled out)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def usage_attributes(usage: Mapping[str, Any] | None) -> Attributes:
    """``gen_ai.usage.*`` from an OpenAI ``usage`` object (chat, completions or embeddings)."""
    if not isinstance(usage, Mapping):
        return {}
    attrs: Attributes = {}
    _put_int(attrs, sc.USAGE_INPUT_TOKENS, usage.get("prompt_tokens"))
    _put_int(attrs, sc.USAGE_OUTPUT_TOKENS, usage.get("completion_tokens"))
    prompt_details = usage.get("prompt_tokens_details")
    if isinstance(prompt_details, Mapping):
        _put_int(attrs, sc.USAGE_CACHE_READ_INPUT_TOKENS, prompt_details.get("cached_tokens"))
        _put_int(attrs, sc.USAGE_CACHE_WRITE_INPUT_TOKENS, prompt_details.get("cache_creation_tokens"))
    completion_details = usage.get("completion_tokens_details")
    if isinstance(completion_details, Mapping):
        _put_int(attrs, sc.USAGE_REASONING_OUTPUT_TOKENS, completion_details.get("reasoning_tokens"))
    return attrs


def response_attributes(body: Mapping[str, Any]) -> Attributes:
    """Response id, model, finish reasons and usage of a non-streaming answer."""
    attrs: Attributes = {}
    if isinstance(body.get("id"), str):
        attrs[sc.RESPONSE_ID] = body["id"]
    if isinstance(body.get("model"), str):
        attrs[sc.RESPONSE_MODEL] = body["model"]
    choices = body.get("choices")
    if isinstance(choices, list):
        reasons = tuple(c.get("finish_reason") for c in choices if isinstance(c, Mapping) and c.get("finish_reason"))
        if reasons:
            attrs[sc.RESPONSE_FINISH_REASONS] = reasons
    attrs.update(usage_attributes(body.get("usage")))
    return attrs


def embeddings_attributes(body: Mapping[str, Any]) -> Attributes:
    attrs = response_attributes(body)
    data = body.get("data")
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        vector = data[0].get("embedding")
        if isinstance(vector, list):
            attrs[sc.EMBEDDINGS_DIMENSION_COUNT] = len(vector)
    return attrs


# --- content ------------------------------------------------------------------------------------


def input_content_attributes(operation: str, body: Mapping[str, Any]) -> Attributes:
    """``gen_ai.input.messages`` / ``gen_ai.system_instructions`` for a request; {} when absent."""
    if operation == sc.OP_CHAT:
        messages = body.get("messages")
        if not isinstance(messages, list):
            return {}
        system = [part for m in messages if _role(m) in {"system", "developer"} for part in _parts(m)]
        rest = [_message(m) for m in messages if _role(m) not in {"system", "developer"}]
        attrs: Attributes = {sc.INPUT_MESSAGES: to_json(rest)}
        if system:
            attrs[sc.SYSTEM_INSTRUCTIONS] = to_json(system)
        return attrs
    prompt = body.get(facts(operation).required)  # the prompt, or the input to embed
    if prompt is None:
        return {}
    texts = [prompt] if isinstance(prompt, str) else prompt if isinstance(prompt, list) else [prompt]
    parts = [{"type": "text", "content": t if isinstance(t, str) else to_json(t)} for t in texts]
    return {sc.INPUT_MESSAGES: to_json([{"role": "user", "parts": parts}])}


def output_content_attributes(operation: str, body: Mapping[str, Any]) -> Attributes:
    """``gen_ai.output.messages`` for a chat or text completion answer."""
    choices = body.get("choices")
    if operation == sc.OP_EMBEDDINGS or not isinstance(choices, list):
        return {}
    out = []
    for choice in choices:
        if not isinstance(choice, Mapping):
            continue
        if operation == sc.OP_CHAT:
            message = _message(choice.get("message") or {}, default_role="assistant")
        else:
            message = {"role": "assistant", "parts": [{"type": "text", "content": str(choice.get("text") or "")}]}
        message["finish_reason"] = choice.get("finish_reason") or ""
        out.append(message)
    return {sc.OUTPUT_MESSAGES: to_json(out)}


def _role(message: Any) -> str:
    return str(message.get("role", "")) if isinstance(message, Mapping) else ""


def _message(message: Any, default_role: str = "user") -> dict[str, Any]:
    if not isinstance(message, Mapping):
        return {"role": default_role, "parts": [{"type": "text", "content": to_json(message)}]}
    role = str(message.get("role") or default_role)
    return {"role": role, "parts": _parts(message)}


def _parts(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if message.get("role") == "tool":
        return [{"type": "tool_call_response", "id": message.get("tool_call_id"), "response": content}]
    if isinstance(content, str):
        parts.append({"type": "text", "content": content})
    elif isinstance(content, list):
        parts.extend(_content_part(p) for p in content)
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        parts.append({"type": "reasoning", "content": reasoning})
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        if isinstance(call, Mapping):
            function = call.get("function")
            function = function if isinstance(function, Mapping) else {}
            parts.append({"type": "tool_call", "id": call.get("id"), "name": function.get("name"),
                          "arguments": function.get("arguments")})
    return parts


def _content_part(part: Any) -> dict[str, Any]:
    if isinstance(part, Mapping) and part.get("type") == "text":
        return {"type": "text", "content": part.get("text", "")}
    kind = part.get("type", "unknown") if isinstance(part, Mapping) else "unknown"
    return {"type": kind, "content": to_json(part)}


def _put_int(attrs: Attributes, name: str, value: Any) -> None:
    if _fits(value) and isinstance(value, int):
        attrs[name] = value


def _fits(value: Any) -> bool:
    """A number an attribute can hold: OTLP ints are int64 and float(10**400) overflows; not a bool."""
    if isinstance(value, bool):
        return False
    return (isinstance(value, int) and -_INT64 <= value < _INT64) or isinstance(value, float)
