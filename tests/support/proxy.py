"""A loopback HTTP proxy for tests: absolute-form forwarding (one request per connection) and
CONNECT tunnels, with optional Basic credentials. It records what it was asked."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field


@dataclass
class ProxySeen:
    request_lines: list[bytes] = field(default_factory=list)
    authorizations: list[bytes | None] = field(default_factory=list)
    forwarded_heads: list[bytes] = field(default_factory=list)


class LoopbackProxy:
    def __init__(self, *, user: str | None = None, password: str | None = None) -> None:
        self.seen = ProxySeen()
        self._expected = None if user is None else b"Basic " + base64.b64encode(f"{user}:{password}".encode())
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def __aenter__(self) -> LoopbackProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:  # open tunnels end with the proxy
            writer.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    def url(self, credentials: str = "") -> str:
        return f"http://{credentials}127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            auth = next((line.split(b":", 1)[1].strip() for line in lines
                         if line.lower().startswith(b"proxy-authorization:")), None)
            self.seen.request_lines.append(lines[0])
            self.seen.authorizations.append(auth)
            if self._expected is not None and auth != self._expected:
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
                return
            method, target, _ = lines[0].split(b" ")
            if method == b"CONNECT":
                await self._tunnel(target, reader, writer)
            else:
                await self._forward(target, lines, reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # cancelled: the test's loop is closing with a tunnel still open
        finally:
            writer.close()

    async def _tunnel(self, target: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, _, port = target.rpartition(b":")
        up_reader, up_writer = await asyncio.open_connection(host.decode(), int(port))
        self._writers.add(up_writer)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()

    async def _forward(self, target: bytes, lines: list[bytes], reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        rest = target.split(b"://", 1)[1]
        authority, _, path = rest.partition(b"/")
        host, _, port = authority.rpartition(b":")
        length = next((int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length:")), 0)
        body = await reader.readexactly(length)
        kept = [line for line in lines[1:] if line and not line.lower().startswith((b"proxy-", b"connection:"))]
        head = b"\r\n".join([lines[0].replace(target, b"/" + path), *kept, b"connection: close", b"", b""])
        self.seen.forwarded_heads.append(head)
        up_reader, up_writer = await asyncio.open_connection(host.decode(), int(port))
        self._writers.add(up_writer)
        up_writer.write(head + body)
        await up_writer.drain()
        answer = await up_reader.readuntil(b"\r\n\r\n")  # test origins answer with a Content-Length
        size = next(int(line.split(b":")[1]) for line in answer.split(b"\r\n")
                    if line.lower().startswith(b"content-length:"))
        writer.write(answer + await up_reader.readexactly(size))
        await writer.drain()
        up_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError, RuntimeError):
        writer.write_eof()
