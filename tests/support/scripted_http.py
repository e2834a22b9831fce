"""A loopback HTTP/1.1 server that plays scripted raw bytes, for the upstream transport's differential tests.

The request to ``FIRST`` is answered with ``Play.pieces`` (one TCP write each, ``TCP_NODELAY``,
drained), then the connection is closed or kept. Any other request target ``/own/<marker>`` gets
a small, well-framed answer whose body is ``own:<marker>``: a caller that reads anything else got
bytes meant for another exchange. Every connection's received bytes are kept, in accept order.

    async with ScriptedServer(Play((head, body), close=False)) as server:
        ...  # request server.url(FIRST), then server.url(own_path(marker))
        await server.played.wait()   # every byte of the play is written (and the close done)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass, field

FIRST = "/first"
OWN_PREFIX = b"own:"
READ_LIMIT = 1 << 20
YIELDS_PER_PIECE = 3


@dataclass(frozen=True)
class Play:
    pieces: tuple[bytes, ...]  # the raw answer to the first request, one TCP write per piece
    close: bool  # close the connection once the pieces are written

    @property
    def wire(self) -> bytes:
        return b"".join(self.pieces)


def own_path(marker: str) -> str:
    return f"/own/{marker}"


def own_answer(marker: bytes) -> bytes:
    body = OWN_PREFIX + marker
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)


@dataclass
class Connection:
    received: bytearray = field(default_factory=bytearray)
    targets: list[bytes] = field(default_factory=list)  # request targets, in order


class ScriptedServer:
    def __init__(self, play: Play) -> None:
        self.play = play
        self.connections: list[Connection] = []
        self.played = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Condition()
        self.port = 0

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=READ_LIMIT)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def connection_of(self, marker: str) -> int | None:
        """The index of the connection that carried the request for ``marker``."""
        target = own_path(marker).encode()
        return next((i for i, conn in enumerate(self.connections) if target in conn.targets), None)

    async def wait_all_closed(self, timeout: float) -> None:
        """Until every accepted connection has ended (the client closed its side)."""
        async with self._idle:
            await asyncio.wait_for(self._idle.wait_for(lambda: not self._handlers), timeout)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        conn = Connection()
        self.connections.append(conn)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while await self._answer(reader, writer, conn):
                pass
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
            conn.received += getattr(exc, "partial", b"")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._handlers.discard(task)
            async with self._idle:
                self._idle.notify_all()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: Connection) -> bool:
        """Read one request and answer it; ``False`` when the connection is to be closed."""
        head = await reader.readuntil(b"\r\n\r\n")
        conn.received += head
        lines = head.split(b"\r\n")
        conn.received += await reader.readexactly(_content_length(lines))
        request_line = lines[0].split(b" ")
        if len(request_line) != 3:  # a request a transport should never have written: keep it, answer nothing
            return False
        target = request_line[1]
        conn.targets.append(target)
        if target != FIRST.encode():
            writer.write(own_answer(target.rsplit(b"/", 1)[1]))
            await writer.drain()
            return True
        try:
            for piece in self.play.pieces:
                writer.write(piece)
                await writer.drain()
                # A few turns of the loop for the client (same loop) to read this piece on its own, so that
                # the split points reach its parser: one turn for select to see the bytes, one for the
                # reader's callback, one for a task woken by it. A best effort no assertion depends on.
                for _ in range(YIELDS_PER_PIECE):
                    await asyncio.sleep(0)
            if self.play.close:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
        finally:
            self.played.set()
        return not self.play.close


def _content_length(lines: list[bytes]) -> int:
    values = [line.split(b":", 1)[1].strip() for line in lines if line.lower().startswith(b"content-length:")]
    return int(values[0]) if values and values[0].isdigit() else 0
