"""Anthropic's Messages API (``POST /v1/messages``, ``/v1/messages/count_tokens``) served as chat calls.

The request is translated to chat (``messages_request``), the answer and the stream back to Anthropic's
shapes (``messages_answer``), and errors to ``{"type": "error", "error": {"type", "message"}}`` with the
gateway's status, except that 503 (a dependency or the upstream's connections are busy) is Anthropic's 529
``overloaded_error``, which the SDKs retry. Every model is served this way; to an ``anthropic/`` deployment
the call goes through as it is when it safely can (``messages_native``).

``count_tokens`` answers without an upstream call: an estimate, about four characters a token (the
mock deployment's count) plus 1,600 a picture or PDF (Anthropic's figure for an image of ~1.15
megapixels, the largest it takes unscaled) and 3 a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from app.dialects.messages_answer import MessagesStream, error_body, error_type, to_message
from app.dialects.messages_native import Passage, passage
from app.dialects.messages_request import to_chat
from app.errors import GatewayError, UpstreamError

_encode = msgspec.json.Encoder()
_PICTURE_TOKENS = 1600
_MESSAGE_TOKENS = 3
_SKIPPED_KEYS = frozenset({"type", "cache_control", "media_type", "id", "tool_use_id"})


class MessagesDialect:
    name = "anthropic_messages"

    def to_chat(self, body: dict[str, Any]) -> dict[str, Any]:
        return to_chat(body)

    def answer(self, chat: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        return to_message(chat, str(request.get("model") or ""))

    def stream(self, request: dict[str, Any]) -> MessagesStream:
        return MessagesStream(str(request.get("model") or ""), estimate_input_tokens(request))

    def passage(self, request: dict[str, Any], deployment: Any, headers: Mapping[str, str],
                direct: bool) -> Passage | None:
        return passage(request, deployment, headers, direct)

    def error(self, exc: GatewayError) -> tuple[int, bytes]:
        if isinstance(exc, UpstreamError) and exc.dialect_answer is not None:
            return exc.dialect_answer  # Anthropic's own, passed through
        status = 529 if exc.status == 503 else exc.status
        return status, _encode.encode(error_body(error_type(status), exc.message))


def count_tokens(body: dict[str, Any]) -> dict[str, Any]:
    """``{"input_tokens": n}`` for a Messages request without ``max_tokens``; a request this route
    would refuse is refused here the same way."""
    to_chat(body, need_max_tokens=False)
    return {"input_tokens": estimate_input_tokens(body)}


def estimate_input_tokens(body: dict[str, Any]) -> int:
    chars, pictures = 0, 0
    for key in ("system", "messages", "tools"):
        more_chars, more_pictures = _measure(body.get(key))
        chars, pictures = chars + more_chars, pictures + more_pictures
    messages = body.get("messages")
    count = len(messages) if isinstance(messages, list) else 0
    return (chars + 3) // 4 + pictures * _PICTURE_TOKENS + count * _MESSAGE_TOKENS


def _measure(value: Any) -> tuple[int, int]:
    """Characters of text and the number of pictures (images and PDFs, whose base64 is not text)."""
    if isinstance(value, str):
        return len(value), 0
    if isinstance(value, list):
        measured = [_measure(item) for item in value]
        return sum(m[0] for m in measured), sum(m[1] for m in measured)
    if not isinstance(value, dict):
        return (len(str(value)), 0) if isinstance(value, int | float) else (0, 0)
    source = value.get("source")
    if value.get("type") in ("image", "document") and isinstance(source, dict) and source.get("type") != "text":
        return 0, 1
    return _measure([item for key, item in value.items() if key not in _SKIPPED_KEYS] + list(value.keys()))
