"""The one interface a client dialect implements (``/v1/messages``, ``/v1/responses``).

A dialect is pure translation around a chat call: the gateway parses the body, ``to_chat`` turns it
into an OpenAI chat body before validation, the call runs as any chat call (keys, teams, hooks,
moderation, the span), and the answer, the stream and errors are written back in the dialect's shape.
"""

from __future__ import annotations

from typing import Any, Protocol

from app.errors import GatewayError


class DialectStream(Protocol):
    """One streamed answer, fed the decoded OpenAI ``chat.completion.chunk`` objects in order."""

    def feed(self, chunk: dict[str, Any]) -> bytes: ...

    def error(self, error: dict[str, Any]) -> bytes: ...  # an in-stream OpenAI error object

    def close(self) -> bytes: ...  # after the last chunk ([DONE])


class ClientDialect(Protocol):
    name: str

    def to_chat(self, body: dict[str, Any]) -> dict[str, Any]: ...  # raises InvalidRequest naming its field

    def answer(self, chat: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]: ...

    def stream(self, request: dict[str, Any]) -> DialectStream: ...

    def error(self, exc: GatewayError) -> tuple[int, bytes]: ...
