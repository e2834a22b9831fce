"""The ASGI front door: the OpenAI POST routes are served here, everything else by Litestar.

The LLM routes are the hot path and need nothing of a framework: the proxy parses the body once
with msgspec and answers bytes. Serving them in plain ASGI skips Litestar's routing, signature
model, exception middleware and response objects (~0.2 ms of CPU per call in the bench); the
admin API, health routes and ``/v1/models`` keep Litestar (OpenAPI, guards, typed bodies).
The behaviour is the same as before: OpenAI error JSON for every failure, 413 over the body limit,
streams cut when the client goes away. The door only frames bytes: who may call and what a call may
log, and the failed call of a body over the limit, are the proxy's (``ProxyService.admit``, ``too_large``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from litestar import Litestar

from app.calls.operations import Operation, routes
from app.errors import GatewayError, render_error
from app.gateway.proxy import Answer, ProxyService, StreamAnswer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("spangate")

OPERATIONS = routes()
_JSON = (b"content-type", b"application/json")


class _BodyTooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


@dataclass(frozen=True, slots=True)
class DialectRoute:
    """A path in another client dialect (``app.dialects``): a chat call the dialect translates, or,
    with ``local``, an answer computed here from the body alone (no upstream, no span)."""

    dialect: Any  # an app.dialects.base.ClientDialect (that package lies above this one)
    key_header: str | None = None  # where the dialect's clients send the key, beside Authorization
    local: Callable[[dict[str, Any]], dict[str, Any]] | None = None


class GatewayApp:
    """Wraps the Litestar app; ``state`` and ``litestar`` are there for tests and tooling."""

    def __init__(self, litestar: Litestar, gateway: Any, dialects: Mapping[str, DialectRoute] | None = None) -> None:
        self.litestar = litestar
        self.state = litestar.state
        self._proxy: ProxyService = gateway.proxy
        self._max_body = gateway.config.max_request_body_bytes
        self._dialects = dialects or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"].rstrip("/") or "/"
            operation = OPERATIONS.get(path)
            if operation is not None:
                await self._llm(operation, None, scope, receive, send)
                return
            route = self._dialects.get(path)
            if route is not None:  # a dialect's call is a chat call
                await self._llm(Operation.CHAT, route, scope, receive, send)
                return
        await self.litestar(scope, receive, send)

    async def _llm(self, operation: Operation, route: DialectRoute | None, scope: Scope, receive: Receive,
                   send: Send) -> None:
        dialect = route.dialect if route is not None else None
        try:
            answer = await self._answer(operation, route, scope, receive)
        except GatewayError as exc:
            await _send_error(send, exc, dialect)
            return
        except _Disconnected:
            return
        except Exception as exc:  # a bug must cost one request a 500, never the worker
            log.error("unhandled error on POST %s: %s", scope["path"], type(exc).__name__, exc_info=exc)
            await _send_error(send, GatewayError("internal error; see the gateway log", code="internal_error"),
                              dialect)
            return
        if isinstance(answer, Answer):
            await _send_json(send, answer.status, answer.body)
        else:
            await _send_stream(answer, receive, send)

    async def _answer(self, operation: Operation, route: DialectRoute | None, scope: Scope,
                      receive: Receive) -> Answer | StreamAnswer:
        headers = _headers(scope)
        client = scope.get("client")
        key_header = route.key_header if route is not None else None
        ctx = self._proxy.admit(headers, client[0] if client else None, scope["path"], key_header=key_header)
        try:
            raw = await self._read_body(headers, receive)
        except _BodyTooLarge:
            raise self._proxy.too_large(operation, ctx) from None
        if route is None:
            return await self._proxy.handle(operation, raw, ctx)
        if route.local is not None:
            return self._proxy.answer_locally(raw, route.local)
        return await self._proxy.handle(operation, raw, ctx, dialect=route.dialect)

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes:
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            raise _BodyTooLarge
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:  # counted as it arrives: a chunked upload declares no length
                raise _BodyTooLarge
            parts.append(chunk)
            if not message.get("more_body", False):
                return parts[0] if len(parts) == 1 else b"".join(parts)


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name (ASGI servers lower-case them); the last one wins."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await _send(send, status, [_JSON, (b"content-length", str(len(body)).encode())], body)


async def _send_error(send: Send, exc: GatewayError, dialect: Any = None) -> None:
    # The same bytes as the Litestar routes' errors (app.server.factory), or the dialect's shape of them.
    answer = render_error(exc, dialect.error(exc) if dialect is not None else None)
    await _send(send, answer.status, list(answer.headers), answer.body)


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_stream(answer: StreamAnswer, receive: Receive, send: Send) -> None:
    """Relays the stream while watching for the client leaving; the span is ended either way."""
    relay = answer.relay
    try:
        await send({"type": "http.response.start", "status": 200, "headers": list(answer.headers)})
        pump = asyncio.ensure_future(_pump(relay.events(), send))
        watch = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await asyncio.wait((pump, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, watch):
                task.cancel()
            for task in (pump, watch):
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task
    finally:
        await relay.close()


async def _pump(events: Any, send: Send) -> None:
    try:
        async for chunk in events:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        await events.aclose()  # runs the relay's ``finally`` now: it names the outcome


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
