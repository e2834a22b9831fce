"""One upstream connection of ``app.wire.http11``'s pool: an asyncio protocol on the shared framing
core (``contracts.http11``), which buffers a response's body for the caller and pauses reading when
the caller does not keep up.
"""

from __future__ import annotations

import asyncio
from collections import deque

import httpx

from contracts.http11 import ResponseFraming, Wording

_HIGH_WATER = 64 * 1024  # buffered body bytes before reading from the socket pauses
_UPSTREAM = Wording(peer="upstream", invalid="invalid HTTP response from upstream")
Key = tuple[bytes, bytes, int]  # (scheme, host, port) of an origin


class Connection(ResponseFraming, asyncio.Protocol):
    """One TCP (or TLS) connection; at most one exchange at a time (framing: ``contracts.http11``).
    Bytes after a complete response, or a parse error after it, only retire the connection."""

    def __init__(self, key: Key) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        # The exchange in progress, beside the framing state.
        self.head: asyncio.Future[None] | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False
        super().__init__(_UPSTREAM)

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.head is None or self.complete:  # bytes nobody asked for: the connection is unusable
            self.close()
            return
        try:
            self.feed(data)
        except httpx.RemoteProtocolError as exc:  # not HTTP, a framing error, a head too large
            self.fail(exc)
            self.close()
            return
        if self.complete and self.keep_alive is False and not self.closed:
            self.close()

    def eof_received(self) -> bool:
        self._lost()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()

    def _lost(self) -> None:
        self.closed = True
        if self.head is None or self.complete:
            return
        if self.until_close and self.error is None:  # the close is the end of this body
            self.complete = True
            self._wake()
            return
        self.fail(httpx.RemoteProtocolError("upstream closed the connection before the response was complete"))

    # -- the framing core's hooks ----------------------------------------------------------------
    def head_done(self) -> None:
        if self.head is not None and not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.complete or self.error is not None:
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def message_done(self) -> None:
        self._wake()

    def fail(self, exc: Exception) -> None:
        super().fail(exc)
        if self.head is not None and not self.head.done():
            self.head.set_exception(exc)
            self.head.exception()  # retrieved: the caller may already have given up on it
        self._wake()

    # -- the exchange ----------------------------------------------------------------------------
    def begin(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        self.reset()
        self.chunks.clear()
        self.buffered, self.waiter = 0, None
        self.head = loop.create_future()
        return self.head

    def finish(self) -> bool:
        """The exchange is over; ``True`` if the connection can serve another one."""
        self.head = None
        return self.complete and self.keep_alive and not self.closed and self.error is None

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def take(self) -> bytes:
        data = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        self.chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    async def wait(self, timeout: float | None, deadline: float | None) -> None:
        """Until more body bytes, the end of the message or an error; ``deadline`` in loop time."""
        loop = asyncio.get_running_loop()
        limit = within(timeout, deadline, loop)
        self.waiter = loop.create_future()
        try:
            if limit is None:
                await self.waiter
            else:
                await asyncio.wait_for(self.waiter, limit)
        except TimeoutError:
            raise httpx.ReadTimeout(f"the answer did not end within {limit:g}s") from None
        finally:
            self.waiter = None


def within(timeout: float | None, deadline: float | None, loop: asyncio.AbstractEventLoop) -> float | None:
    """``timeout`` cut to what is left before ``deadline`` (loop time); ``None``: unbounded."""
    if deadline is None:
        return timeout
    left = max(0.0, deadline - loop.time())
    return left if timeout is None else min(timeout, left)
