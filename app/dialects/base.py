"""What a client dialect is: a request shape other than OpenAI's chat, served as a chat call.

The gateway speaks OpenAI chat inside (validation, hooks, moderation, the span, the deployments); a
dialect only translates at the edge: the client's request into a chat body before validation, the
chat answer (or each chat chunk of a stream) into what the client reads, and a ``GatewayError`` into
the dialect's error shape. The gateway layer holds a dialect as ``Any`` (it lies below this package).
"""

from __future__ import annotations

from typing import Any, Protocol

from app.errors import GatewayError


class DialectStream(Protocol):
    """One streamed call, in the client's dialect; fed the relay's decoded OpenAI chunks in order."""

    def feed(self, chunk: dict[str, Any]) -> bytes: ...  # one chat.completion.chunk -> SSE bytes (maybe none)

    def error(self, error: dict[str, Any]) -> bytes: ...  # an in-stream OpenAI error object -> the dialect's

    def close(self) -> bytes: ...  # after the last chunk ([DONE]): what still has to be said


class ClientDialect(Protocol):
    name: str  # "anthropic_messages", "openai_responses"

    def to_chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """The dialect's request as an OpenAI chat body; ``InvalidRequest`` with ``param`` naming the
        dialect's own field for what cannot be translated."""
        ...

    def answer(self, chat: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        """An OpenAI chat completion as the dialect's answer to ``request`` (the client's body)."""
        ...

    def stream(self, request: dict[str, Any]) -> DialectStream: ...

    def error(self, exc: GatewayError) -> tuple[int, bytes]:
        """The status and JSON body of ``exc`` in the dialect's shape."""
        ...
