"""The OpenAI Responses dialect (``POST /v1/responses``): the OpenAI SDK's ``client.responses``, the Agents
SDK, Codex. Passed through to an OpenAI deployment that serves Responses (``responses_native``), else
translated to and from a chat call; errors keep OpenAI's error JSON, which is already this dialect's shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from app.dialects.responses_answer import answer
from app.dialects.responses_native import Passage, passage
from app.dialects.responses_request import to_chat
from app.dialects.responses_stream import ResponsesStream
from app.errors import GatewayError, error_body


class ResponsesDialect:
    """``app.dialects.base.ClientDialect`` for OpenAI's Responses API."""

    name = "openai_responses"

    def to_chat(self, body: dict[str, Any]) -> dict[str, Any]:
        return to_chat(body)

    def answer(self, chat: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        return answer(chat, request)

    def passage(self, request: dict[str, Any], deployment: Any, headers: Mapping[str, str],
                direct: bool) -> Passage | None:
        return passage(request, deployment, headers, direct)

    def stream(self, request: dict[str, Any]) -> ResponsesStream:
        return ResponsesStream(request)

    def error(self, exc: GatewayError) -> tuple[int, bytes]:
        return exc.status, msgspec.json.encode(error_body(exc))
