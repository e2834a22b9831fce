"""Bedrock Converse answers and errors -> OpenAI's shapes (pure).

Errors: Bedrock answers ``{"message": ...}`` and names the exception in the ``x-amzn-ErrorType``
header (``ThrottlingException:http://internal.amazon.com/coral/...``; botocore keeps what is
before the colon). The exception name becomes the OpenAI ``code``; the ``type`` is the OpenAI word
for the status, so a client that branches on OpenAI's types keeps working.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec

from app.errors import UpstreamInvalidResponse

FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                  "model_context_window_exceeded": "length", "tool_use": "tool_calls",
                  "guardrail_intervened": "content_filter", "content_filtered": "content_filter"}
# The exceptions of bedrock-runtime's model (botocore/data/bedrock-runtime) and their statuses.
EXCEPTION_STATUS = {"ValidationException": 400, "ServiceQuotaExceededException": 400,
                    "AccessDeniedException": 403, "UnrecognizedClientException": 403,
                    "ResourceNotFoundException": 404, "ModelTimeoutException": 408,
                    "ModelErrorException": 424, "ModelStreamErrorException": 424, "ThrottlingException": 429,
                    "ModelNotReadyException": 429, "InternalServerException": 500,
                    "ServiceUnavailableException": 503}
_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 408: "timeout", 429: "rate_limit_error"}


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(stop_reason, "stop")  # malformed_* and unknown ones: the answer ended


def usage(raw: Any) -> dict[str, Any]:
    """Converse ``usage`` -> OpenAI's. Bedrock's ``inputTokens`` leaves out cache reads and writes;
    OpenAI's ``prompt_tokens`` counts the whole prompt, its cached part in ``cached_tokens``."""
    raw = raw if isinstance(raw, Mapping) else {}
    read, write = _count(raw.get("cacheReadInputTokens")), _count(raw.get("cacheWriteInputTokens"))
    prompt = _count(raw.get("inputTokens")) + read + write
    completion = _count(raw.get("outputTokens"))
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                           "total_tokens": prompt + completion}
    if "cacheReadInputTokens" in raw or "cacheWriteInputTokens" in raw:
        out["prompt_tokens_details"] = {"cached_tokens": read, "cache_creation_tokens": write}
    return out


def _count(value: Any) -> int:
    return value if type(value) is int and value >= 0 else 0


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"  # Converse answers carry no id of their own


def chat_answer(body: bytes, model: str) -> bytes:
    try:
        data = msgspec.json.decode(body)
        message = data["output"]["message"]
        content = message["content"]
    except (msgspec.DecodeError, KeyError, TypeError):
        raise UpstreamInvalidResponse(f"Bedrock model {model!r} answered without output.message.content") from None
    if not isinstance(content, list):
        raise UpstreamInvalidResponse(f"Bedrock model {model!r} answered with a content that is not a list")
    choice = {"index": 0, "message": _message(content), "finish_reason": finish_reason(data.get("stopReason"))}
    return msgspec.json.encode({"id": new_id(), "object": "chat.completion", "created": int(time.time()),
                                "model": model, "choices": [choice], "usage": usage(data.get("usage"))})


def _message(content: list[Any]) -> dict[str, Any]:
    texts, reasoning, calls = [], [], []
    for block in content:
        if not isinstance(block, Mapping):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), Mapping):
            calls.append(tool_call(block["toolUse"]))
        elif isinstance(block.get("reasoningContent"), Mapping):
            reasoning.append(((block["reasoningContent"].get("reasoningText") or {}).get("text")) or "")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    return message


def tool_call(use: Mapping[str, Any]) -> dict[str, Any]:
    arguments = msgspec.json.encode(use.get("input", {})).decode()
    return {"id": use.get("toolUseId") or "", "type": "function",
            "function": {"name": use.get("name") or "", "arguments": arguments}}


def error_json(status: int, body: bytes, error_type: str | None) -> bytes:
    """``{"message"}`` + the exception name -> OpenAI's error object (the caller scrubs and vets it)."""
    try:
        data = msgspec.json.decode(body) if body else None
    except msgspec.DecodeError:
        data = None
    message = _message_of(data) or (body[:200].decode(errors="replace") if body else f"HTTP {status}")
    name = (error_type or "").partition(":")[0] or _name_in(data) or None
    return msgspec.json.encode({"error": {"message": message, "type": openai_type(status), "code": name}})


def _message_of(data: Any) -> str | None:
    if not isinstance(data, Mapping):
        return None
    message = data.get("message") or data.get("Message")
    return message if isinstance(message, str) else None


def _name_in(data: Any) -> str | None:
    """Some AWS front doors name the exception in the body instead (``__type``: ``ns#Name``)."""
    name = data.get("__type") if isinstance(data, Mapping) else None
    return name.rpartition("#")[2] if isinstance(name, str) else None


def openai_type(status: int) -> str:
    return _TYPES.get(status, "api_error")
