"""The HTTP/1.1 upstream transport against a scripted loopback server (real sockets, no mocks)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.wire.connection import Connection
from app.wire.http11 import Http11Transport
from tests.support.upstream import closed_port

WAIT = 5.0  # the most a test waits for an event it needs (a bound, never the order of events)
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[bool]]


class Server:
    """Reads one request at a time per connection and lets ``handler`` answer it.

    The handler gets the connection's number (0, 1, ...) and returns ``False`` to close it."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self.connections
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                self.requests.append(head + await reader.readexactly(length))
                if not await self.handler(reader, writer, number):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def url(self, path: str = "/v1/chat/completions") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def ok(body: bytes = b'{"ok": true}', extra: bytes = b"") -> Handler:
    async def handler(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%b\r\n%b"
                     % (len(body), extra, body))
        await writer.drain()
        return b"connection: close" not in extra.lower()
    return handler


def request(url: str, *, read: float | None = 5.0, pool: float | None = 5.0, connect: float | None = 5.0,
            body: bytes = b'{"model": "m"}') -> httpx.Request:
    return httpx.Request("POST", url, content=body, headers={"content-type": "application/json"},
                         extensions={"timeout": {"connect": connect, "read": read, "write": 5.0, "pool": pool}})


async def call(transport: Http11Transport, req: httpx.Request) -> tuple[int, bytes]:
    response = await transport.handle_async_request(req)
    try:
        return response.status_code, await response.aread()
    finally:
        await response.aclose()


@pytest.fixture
async def transport() -> AsyncIterator[Http11Transport]:
    t = Http11Transport()
    yield t
    await t.aclose()


async def test_sends_the_request_as_httpx_prepared_it_and_reuses_the_connection(transport: Http11Transport) -> None:
    async with Server(ok()) as server:
        first = await call(transport, request(server.url(), body=b'{"n": 1}'))
        second = await call(transport, request(server.url(), body=b'{"n": 2}'))
    assert first == second == (200, b'{"ok": true}')
    assert server.connections == 1  # keep-alive
    line, *headers = server.requests[0].split(b"\r\n\r\n")[0].split(b"\r\n")
    assert line == b"POST /v1/chat/completions HTTP/1.1"
    assert {b"host: 127.0.0.1:%d" % server.port, b"content-length: 8"} <= {h.lower() for h in headers}
    assert server.requests[1].endswith(b'{"n": 2}')


async def test_a_streamed_request_body_is_sent_whole_with_its_length(transport: Http11Transport) -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b'{"model": '
        yield b'"m"}'

    req = httpx.Request("POST", "http://127.0.0.1/", content=parts(), extensions={"timeout": {"read": 5.0}})
    assert req.headers["transfer-encoding"] == "chunked"  # what httpx prepares for a stream
    async with Server(ok()) as server:
        req.url = httpx.URL(server.url())
        assert await call(transport, req) == (200, b'{"ok": true}')
    head, body = server.requests[0].split(b"\r\n\r\n", 1)
    assert body == b'{"model": "m"}'
    assert b"transfer-encoding" not in head.lower() and b"content-length: 14" in head.lower()


async def test_chunked_bodies_are_decoded_and_headers_kept(transport: Http11Transport) -> None:
    async def chunked(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> bool:
        writer.write(b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 3\r\ntransfer-encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        await writer.drain()
        return True

    async with Server(chunked) as server:
        response = await transport.handle_async_request(request(server.url()))
        assert (response.status_code, response.headers["retry-after"]) == (429, "3")
        assert await response.aread() == b"hello world"
        await response.aclose()
        assert await call(transport, request(server.url())) == (429, b"hello world")
    assert server.connections == 1


def fins_seen(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Set once an upstream connection of the transport has received the server's FIN."""
    seen, received = asyncio.Event(), Connection.eof_received

    def eof_received(self: Connection) -> bool:
        keep_open = received(self)
        seen.set()
        return keep_open

    monkeypatch.setattr(Connection, "eof_received", eof_received)
    return seen


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition`` holds: the transport's state, not a guess at a delay."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def test_connection_close_and_server_side_idle_close_open_a_new_connection(
        transport: Http11Transport, monkeypatch: pytest.MonkeyPatch) -> None:
    async with Server(ok(extra=b"connection: close\r\n")) as server:
        assert (await call(transport, request(server.url())))[0] == 200
        assert (await call(transport, request(server.url())))[0] == 200
    assert server.connections == 2

    async def once(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> bool:
        await ok()(_r, writer, _n)
        return False  # keep-alive promised, then the server closes the idle connection anyway

    fin = fins_seen(monkeypatch)
    async with Server(once) as server:
        assert (await call(transport, request(server.url())))[0] == 200
        await asyncio.wait_for(fin.wait(), WAIT)  # the FIN arrives while the connection is idle in the pool
        assert (await call(transport, request(server.url())))[0] == 200
    assert server.connections == 2


async def test_refused_connect_is_connect_error_and_zero_timeout_is_connect_timeout(
        transport: Http11Transport) -> None:
    with pytest.raises(httpx.ConnectError):
        await call(transport, request(f"http://127.0.0.1:{closed_port()}/v1/embeddings"))
    async with Server(ok()) as server:
        with pytest.raises(httpx.ConnectTimeout):
            await call(transport, request(server.url(), connect=0))


async def test_read_timeout_then_the_late_answer_is_never_read_by_the_next_call(transport: Http11Transport) -> None:
    timed_out = asyncio.Event()

    async def slow_first(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> bool:
        if number == 0:
            await timed_out.wait()  # the first answer comes only after its call gave up
        return await ok(b'{"conn": %d}' % number)(_r, writer, number)

    async with Server(slow_first) as server:
        with pytest.raises(httpx.ReadTimeout):
            await call(transport, request(server.url(), read=0.1))
        timed_out.set()
        assert await call(transport, request(server.url())) == (200, b'{"conn": 1}')


async def test_truncated_body_is_a_protocol_error(transport: Http11Transport) -> None:
    async def truncated(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")
        await writer.drain()
        return False

    async with Server(truncated) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            await call(transport, request(server.url()))


async def test_a_body_closed_early_drops_its_connection(transport: Http11Transport) -> None:
    gone = asyncio.Event()

    async def stream(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for i in range(3):
            data = b"data: %d-%d\n\n" % (number, i)
            writer.write(b"%x\r\n%b\r\n" % (len(data), data))
            await writer.drain()
            if number == 0:
                await gone.wait()  # the rest of the first stream comes after its client went away
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    async with Server(stream) as server:
        response = await transport.handle_async_request(request(server.url()))
        async for chunk in response.aiter_raw():
            assert chunk.startswith(b"data: 0-0")
            break
        await response.aclose()  # the client went away mid-stream
        gone.set()
        response = await transport.handle_async_request(request(server.url()))
        body = await response.aread()
        await response.aclose()
    assert body == b"data: 1-0\n\ndata: 1-1\n\ndata: 1-2\n\n"  # a fresh connection, no stale bytes
    assert server.connections == 2


async def test_pool_limit_waits_for_a_free_connection_or_times_out() -> None:
    release, arrived = asyncio.Event(), asyncio.Event()

    async def held(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> bool:
        if number == 0 and not release.is_set():
            arrived.set()
            await release.wait()
        return await ok()(_r, writer, number)

    transport = Http11Transport(max_connections=1)
    try:
        async with Server(held) as server:
            first = asyncio.ensure_future(call(transport, request(server.url())))
            await asyncio.wait_for(arrived.wait(), WAIT)  # the only connection is busy with the first call
            with pytest.raises(httpx.PoolTimeout):
                await call(transport, request(server.url(), pool=0.1))
            waiting = asyncio.ensure_future(call(transport, request(server.url(), pool=5.0)))
            await until(lambda: bool(transport._waiters))  # queued for the connection before it is freed
            release.set()
            assert (await first)[0] == 200
            assert (await waiting)[0] == 200
        assert server.connections == 1  # the waiter got the first call's connection back
    finally:
        await transport.aclose()


async def test_a_large_streamed_body_arrives_whole_when_read_slowly(transport: Http11Transport) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB: well past the 64 KiB that pauses reading

    async with Server(ok(payload)) as server:
        response = await transport.handle_async_request(request(server.url()))
        received = bytearray()
        async for chunk in response.aiter_raw():
            received += chunk
            await asyncio.sleep(0)  # a slow consumer
        await response.aclose()
        assert bytes(received) == payload
        assert await call(transport, request(server.url())) == (200, payload)
    assert server.connections == 1


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_https_upstreams_are_verified_against_the_trust_store(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                received.append(await reader.readexactly(length))
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    trusting = Http11Transport(ssl_context=ssl.create_default_context(cafile=str(cert)))
    default = Http11Transport()  # the system trust store does not know this certificate
    try:
        url = f"https://localhost:{port}/v1/chat/completions"
        assert await call(trusting, request(url)) == (200, b"ok")
        assert await call(trusting, request(url, body=b'{"n": 2}')) == (200, b"ok")
        assert received == [b'{"model": "m"}', b'{"n": 2}']
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await call(default, request(url))
    finally:
        await trusting.aclose()
        await default.aclose()
        server.close()


def answers(*raw: bytes, keep: bool = True) -> Handler:
    """Answers the server's i-th request with ``raw[i]`` (the last one after that), ``%(n)d`` filled
    with the connection number."""
    served = iter(range(1 << 30))

    async def handler(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> bool:
        writer.write(raw[min(next(served), len(raw) - 1)].replace(b"%(n)d", str(number).encode()))
        await writer.drain()
        return keep
    return handler


async def test_an_interim_100_continue_is_skipped_and_never_answers_the_next_call(transport: Http11Transport) -> None:
    # The finding of issue #8: the 100 was taken as the answer and the real 200 reached the next caller.
    first = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n"
             b"HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\nANSWER-FOR-REQUEST-A")
    second = b"HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\nANSWER-FOR-REQUEST-B"
    async with Server(answers(first, second)) as server:
        response = await transport.handle_async_request(request(server.url()))
        assert (response.status_code, await response.aread()) == (200, b"ANSWER-FOR-REQUEST-A")
        assert response.headers.get("link") is None  # the interim response's headers are not the answer's
        await response.aclose()
        assert await call(transport, request(server.url())) == (200, b"ANSWER-FOR-REQUEST-B")
    assert server.connections == 1


async def test_a_close_delimited_body_is_the_answer_and_its_connection_is_not_reused(
        transport: Http11Transport) -> None:
    async with Server(answers(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"c\": %(n)d}",
                              keep=False)) as server:
        assert await call(transport, request(server.url())) == (200, b'{"c": 0}')
        assert await call(transport, request(server.url())) == (200, b'{"c": 1}')
    assert server.connections == 2


async def test_content_length_with_transfer_encoding_reads_chunked_and_retires_the_connection(
        transport: Http11Transport) -> None:
    raw = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n5\r\nc-%(n)d-x\r\n0\r\n\r\n"
    async with Server(answers(raw)) as server:
        assert await call(transport, request(server.url())) == (200, b"c-0-x")
        assert await call(transport, request(server.url())) == (200, b"c-1-x")
    assert server.connections == 2


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nabc",
    b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n",
    b"NOT HTTP AT ALL\r\n\r\n",
])
async def test_ambiguous_or_foreign_framing_is_an_error_and_the_connection_is_dropped(
        transport: Http11Transport, raw: bytes) -> None:
    async with Server(answers(raw, b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnext")) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            await call(transport, request(server.url()))
        assert await call(transport, request(server.url())) == (200, b"next")
    assert server.connections == 2


async def test_bytes_after_a_complete_answer_retire_the_connection(transport: Http11Transport) -> None:
    smuggled = b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nSTOLEN"
    async with Server(answers(b"HTTP/1.1 204 No Content\r\ncontent-length: 6\r\n\r\n" + smuggled,
                              b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nown")) as server:
        assert await call(transport, request(server.url())) == (204, b"")
        assert await call(transport, request(server.url())) == (200, b"own")
    assert server.connections == 2


@pytest.mark.parametrize(("name", "value"), [
    (b"authorization", b"Bearer sk-x\r\nX-Injected: 1"), (b"authorization", b"Bearer sk-x\n"),
    (b"x-extra", b"a\x00b"), (b"bad name", b"v"), (b"x-a\r\nx-b", b"v"),
])
async def test_a_header_with_a_line_break_or_nul_is_refused_before_anything_is_written(
        transport: Http11Transport, name: bytes, value: bytes) -> None:
    async with Server(ok()) as server:
        req = request(server.url())
        req.headers.raw  # noqa: B018 - materialise, then smuggle the raw pair past httpx's own checks
        req.headers._list.append((name, name.lower(), value))
        with pytest.raises(httpx.LocalProtocolError):
            await call(transport, req)
        assert await call(transport, request(server.url())) == (200, b'{"ok": true}')
    assert server.requests and all(b"sk-x" not in r and b"a\x00b" not in r for r in server.requests)
    assert len(server.requests) == 1
