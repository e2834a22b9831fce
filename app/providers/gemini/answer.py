"""Gemini answers -> OpenAI's: ``GenerateContentResponse`` to a chat completion (whole, or one
streamed piece at a time: ``choice_delta``), ``usageMetadata`` to ``usage``, embeddings, errors."""

from __future__ import annotations

import base64
import struct
import time
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec

from app.errors import UpstreamInvalidResponse
from app.providers.gemini.ids import call_id

_encode = msgspec.json.encode
_decode = msgspec.json.decode
_FILTERED = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
                       "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR"})
# Google's error statuses carry the HTTP status; OpenAI's clients read the type.
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 429: "rate_limit_error"}


def finish_reason(reason: Any, called: bool) -> str | None:
    """OpenAI's finish reason for a candidate's ``finishReason`` (None: not finished yet)."""
    if not isinstance(reason, str) or reason == "FINISH_REASON_UNSPECIFIED":
        return None
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    return "tool_calls" if called else "stop"


def usage(meta: Any) -> dict[str, Any] | None:
    """``usageMetadata`` -> ``usage``. Gemini counts thoughts apart from the answer; OpenAI's
    completion tokens include reasoning, so they are added (and told in ``reasoning_tokens``)."""
    if not isinstance(meta, Mapping):
        return None
    prompt = _int(meta.get("promptTokenCount")) + _int(meta.get("toolUsePromptTokenCount"))
    thoughts = _int(meta.get("thoughtsTokenCount"))
    completion = _int(meta.get("candidatesTokenCount")) + thoughts
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                           "total_tokens": _int(meta.get("totalTokenCount")) or prompt + completion}
    cached = meta.get("cachedContentTokenCount")
    if isinstance(cached, int):
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    if thoughts:
        out["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    return out


def parts_of(candidate: Mapping[str, Any], response_id: str, index: int,
             first_call: int = 0) -> tuple[str | None, list[dict[str, Any]]]:
    """A candidate's answer text (thoughts left out) and its function calls as OpenAI tool calls."""
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, Mapping) else None
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, Mapping) or part.get("thought") is True:
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part.get("functionCall"), Mapping):
            calls.append(_tool_call(part, response_id, index, first_call + len(calls)))
    return ("".join(texts) if texts else None), calls


def _tool_call(part: Mapping[str, Any], response_id: str, index: int, k: int) -> dict[str, Any]:
    call = part["functionCall"]
    signature = part.get("thoughtSignature") if isinstance(part.get("thoughtSignature"), str) else None
    given = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
    args = call.get("args") if isinstance(call.get("args"), Mapping) else {}
    return {"index": k, "id": given or call_id(response_id, index, k, signature), "type": "function",
            "function": {"name": str(call.get("name") or ""), "arguments": _encode(args).decode()}}


def response_id(data: Mapping[str, Any]) -> str:
    found = data.get("responseId")
    return found if isinstance(found, str) and found else uuid.uuid4().hex


def chat_answer(body: bytes, model: str) -> bytes:
    data = _object(body)
    rid = response_id(data)
    candidates = data.get("candidates") if isinstance(data.get("candidates"), list) else []
    choices = [_choice(c, rid, i) for i, c in enumerate(candidates) if isinstance(c, Mapping)]
    if not choices:  # the prompt itself was blocked (promptFeedback.blockReason): nothing was generated
        choices = [{"index": 0, "message": {"role": "assistant", "content": None}, "finish_reason": "content_filter"}]
    answer: dict[str, Any] = {"id": f"chatcmpl-{rid}", "object": "chat.completion", "created": int(time.time()),
                              "model": _model(data, model), "choices": choices}
    found = usage(data.get("usageMetadata"))
    if found:
        answer["usage"] = found
    return _encode(answer)


def _choice(candidate: Mapping[str, Any], rid: str, position: int) -> dict[str, Any]:
    index = candidate.get("index") if isinstance(candidate.get("index"), int) else position
    text, calls = parts_of(candidate, rid, index)
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in calls]
    reason = finish_reason(candidate.get("finishReason"), bool(calls)) or ("tool_calls" if calls else "stop")
    return {"index": index, "message": message, "finish_reason": reason}


def embeddings_answer(body: bytes, model: str, payload: Mapping[str, Any]) -> bytes:
    data = _object(body)
    embeddings = data.get("embeddings")
    if not isinstance(embeddings, list):
        raise UpstreamInvalidResponse("the Gemini embeddings answer has no embeddings list")
    as_base64 = payload.get("encoding_format") == "base64"
    items = [{"object": "embedding", "index": i, "embedding": _vector(e, as_base64)} for i, e in enumerate(embeddings)]
    answer: dict[str, Any] = {"object": "list", "data": items, "model": model}
    meta = data.get("usageMetadata")
    if isinstance(meta, Mapping):
        tokens = _int(meta.get("promptTokenCount"))
        answer["usage"] = {"prompt_tokens": tokens, "total_tokens": _int(meta.get("totalTokenCount")) or tokens}
    return _encode(answer)


def _vector(embedding: Any, as_base64: bool) -> Any:
    values = embedding.get("values") if isinstance(embedding, Mapping) else None
    if not isinstance(values, list):
        raise UpstreamInvalidResponse("a Gemini embedding has no values")
    if not as_base64:
        return values
    # OpenAI's base64 encoding: little-endian float32s (what the openai clients ask for by default).
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def error_body(status: int, body: bytes) -> bytes:
    """``{"error": {"code": 429, "message", "status": "RESOURCE_EXHAUSTED"}}`` -> OpenAI's shape."""
    try:
        data = _decode(body) if body else None
    except msgspec.DecodeError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict):  # streamed errors come in an array
        error = data[0].get("error")
    error = error if isinstance(error, Mapping) else {}
    message = error.get("message") if isinstance(error.get("message"), str) else body[:500].decode(errors="replace")
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    code = error.get("status") if isinstance(error.get("status"), str) else None
    return _encode({"error": {"message": message or f"HTTP {status}", "type": kind, "code": code}})


def _model(data: Mapping[str, Any], model: str) -> str:
    version = data.get("modelVersion")
    return version if isinstance(version, str) and version else model


def _object(body: bytes) -> dict[str, Any]:
    try:
        data = _decode(body)
    except msgspec.DecodeError:
        raise UpstreamInvalidResponse("the Gemini answer is not JSON") from None
    if not isinstance(data, dict):
        raise UpstreamInvalidResponse("the Gemini answer is not a JSON object")
    return data


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
