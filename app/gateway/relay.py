"""Relaying one upstream stream to the client; its call ends exactly once, however the stream ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from app.errors import GatewayError, UpstreamError, UpstreamInvalidResponse, error_body
from app.gateway.lifecycle import CallEnd
from app.gateway.sse import StreamAccumulator
from app.hooks.chain import StreamFilter
from contracts import semconv as sc

log = logging.getLogger("spangate")


class StreamRelay:
    """Forwards the upstream's events through the hooks' stream filters, then ends the call through
    its ``CallEnd`` (success or failure, by ``call.error``)."""

    def __init__(self, end: CallEnd, handle: Any, acc: StreamAccumulator, filters: Sequence[StreamFilter],
                 assemble: bool) -> None:
        self._call_end = end
        self._call = end.call
        self._handle = handle
        self._acc = acc
        self._filters = filters
        self._assemble = assemble
        self._ended = False

    async def events(self) -> AsyncIterator[bytes]:
        # Kept only when the stream stops at a ``yield``: the ASGI side closed the generator or
        # cancelled its task because the client left. Every other way out names its own outcome.
        outcome = sc.STREAM_CLIENT_DISCONNECTED
        error: GatewayError | None = None
        call = self._call
        try:
            async for chunk in self._handle.chunks():
                out = self._acc.feed(chunk)
                if out and self._filters:
                    out = await self._filtered(out)
                if out:
                    if call.time_to_first_chunk is None:
                        call.time_to_first_chunk = time.perf_counter() - call.started
                    yield out
                if self._acc.error is not None:
                    raise self._acc.error
            tail = self._acc.flush()
            if self._acc.error is not None:
                raise self._acc.error
            if self._filters:
                tail = await self._filtered(tail) + await self._filters_end()
            if tail:
                yield tail
            outcome = sc.STREAM_COMPLETED if self._acc.done else sc.STREAM_ENDED_WITHOUT_DONE
        except GatewayError as exc:
            outcome, error = _stream_outcome(exc), exc
            yield error_event(exc)
        except Exception as exc:  # whatever else breaks, the client gets an error event, not a cut connection
            deployment = call.deployment.config.deployment_id if call.deployment is not None else "?"
            log.error("relaying the stream of %s failed: %s", deployment, type(exc).__name__, exc_info=exc)
            error = UpstreamInvalidResponse(f"relaying the upstream's stream failed ({type(exc).__name__})")
            outcome = sc.STREAM_UPSTREAM_INVALID_RESPONSE
            yield error_event(error)
        finally:
            await self._end(outcome, error)

    async def _filtered(self, out: bytes) -> bytes:
        for stream_filter in self._filters:
            out = await stream_filter.feed(out)
        return out

    async def _filters_end(self) -> bytes:
        """What each filter still holds, in order; a filter's held bytes pass the filters after it."""
        out = b""
        for i, stream_filter in enumerate(self._filters):
            held = await stream_filter.end()
            for later in self._filters[i + 1:]:
                held = await later.feed(held) if held else held
            out += held
        return out

    async def close(self) -> None:
        """Runs after the response; ends the call if the stream never started (early disconnect)."""
        await self._end(sc.STREAM_CLIENT_DISCONNECTED, None)

    async def _end(self, outcome: str, error: GatewayError | None) -> None:
        if self._ended:
            return
        self._ended = True
        with contextlib.suppress(Exception):  # releasing a broken connection must not mask the outcome
            await self._handle.aclose()
        call = self._call
        attrs = self._acc.attributes()
        attrs[sc.STREAM_OUTCOME] = call.stream_outcome = outcome
        call.usage = self._acc.usage
        if self._assemble:
            call.response = self._acc.assembled()
        call.error = error
        self._call_end.stream_ended(attrs)
        if self._call_end.settling is not None:  # the stream's spend, counted before the relay is done
            with contextlib.suppress(Exception):
                await asyncio.shield(self._call_end.settling)


def _stream_outcome(exc: GatewayError) -> str:
    if isinstance(exc, UpstreamInvalidResponse):
        return sc.STREAM_UPSTREAM_INVALID_RESPONSE
    return sc.STREAM_UPSTREAM_ERROR if isinstance(exc, UpstreamError) else sc.STREAM_REJECTED


def error_event(exc: GatewayError) -> bytes:
    return b"data: " + msgspec.json.encode(error_body(exc)) + b"\n\n"


class DialectRelay:
    """A relay whose client speaks another dialect: the relay still produces OpenAI chunks (the
    hooks' filters, moderation and the span read them) and the dialect's stream writes each one as
    the client's events. Its error events go to the dialect's ``error``; after one, nothing more."""

    def __init__(self, relay: StreamRelay, stream: Any) -> None:
        self._relay = relay
        self._stream = stream  # an app.dialects.base.DialectStream
        self._failed = False
        self._pending = b""  # the start of an event a stream filter has not finished yet

    async def events(self) -> AsyncIterator[bytes]:
        events = self._relay.events()
        try:
            async for out in events:
                if written := self._written(out):
                    yield written
            if self._pending and (written := self._written(b"\n\n")):  # a last event without its blank line
                yield written
            if not self._failed and (tail := self._stream.close()):
                yield tail
        finally:
            await events.aclose()  # the relay's ``finally`` ends the call now, not at garbage collection

    async def close(self) -> None:
        await self._relay.close()

    def _written(self, out: bytes) -> bytes:
        """The relay's events (LF-framed: ``StreamAccumulator`` cuts them whole, and a filter that
        holds text back may still hand on part of one) in the dialect."""
        events = (self._pending + out).split(b"\n\n")
        self._pending = events.pop()  # empty when ``out`` ended an event
        written = []
        for event in events:
            chunk = _chunk(event)
            if chunk is None or self._failed:
                continue
            if chunk.get("choices") is None and isinstance(chunk.get("error"), dict):
                self._failed = True
                written.append(self._stream.error(chunk["error"]))
            else:
                written.append(self._stream.feed(chunk))
        return b"".join(written)


def _chunk(event: bytes) -> dict[str, Any] | None:
    """One event's JSON object; ``None`` for ``[DONE]``, comments and what no client could read."""
    payload = b"".join(line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:"))
    if not payload or payload == b"[DONE]":
        return None
    try:
        chunk = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return None
    return chunk if isinstance(chunk, dict) else None
