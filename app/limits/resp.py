"""A small asyncio Redis client speaking RESP2: the limits backend's request path, at a fifth of redis-py's CPU.

One connection per client, pipelined: each command is written as it comes and its future joins a FIFO;
replies arrive in the order the commands were sent, so each reply resolves the oldest future. redis-py
spent ~57 us of CPU per command (connection pool, retry wrapper, response callbacks); a raw round trip
on asyncio costs ~13 us, and this client is built to stay near that (bench/limits_redis.py).

Errors::

    RedisUnavailable (ConnectionError)  no connection, a lost one, or no reply within the timeout;
                                        the message names host:port, never the password
    ReplyError (Exception)              Redis answered with an error reply ("-ERR ...")
      NoScriptError                     "-NOSCRIPT": the script is not cached (a new or restarted Redis)

A lost connection or a timeout fails every command in flight on it at once (their replies could no
longer be matched to them) and the next command opens a new connection. ``encode_command`` and
``ReplyParser`` are pure, and proven against redis-py's packer and parser (tests/app/limits/test_resp.py).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from app.config.keys import ConfigError

Arg = bytes | str | int | float
DEFAULT_PORT = 6379
_INCOMPLETE = -1


class RedisUnavailable(ConnectionError):
    """Redis could not be reached, or did not answer in time."""


class ReplyError(Exception):
    """An error reply; ``code`` is its first word (``ERR``, ``WRONGTYPE``, ``NOSCRIPT``...)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = message.split(" ", 1)[0]


class NoScriptError(ReplyError):
    """EVALSHA of a script this Redis has not cached: load it and run it again."""


class ProtocolError(Exception):
    """Bytes that are not RESP2: the connection cannot be trusted past them."""


def encode_command(args: Sequence[Arg]) -> bytes:
    """One command as a RESP2 array of bulk strings (what redis-py's ``PythonRespSerializer`` writes).

    Dispatch on the exact type first, and no ``%s`` of the data into a second bytes: the isinstance chain
    and that copy were this client's largest CPU costs per call (each change halved an admission's encoding)."""
    parts = [b"*%d\r\n" % len(args)]
    append = parts.append
    for arg in args:
        kind = type(arg)
        if kind is str:
            data = arg.encode()  # type: ignore[union-attr]
        elif kind is bytes:
            data = arg  # type: ignore[assignment]
        elif kind is int:
            data = b"%d" % arg
        else:
            data = _encode_other(arg)
        append(b"$%d\r\n" % len(data))
        append(data)
        append(b"\r\n")
    return b"".join(parts)


def _encode_other(arg: object) -> bytes:
    if isinstance(arg, bool):
        raise TypeError("a Redis argument is bytes, str, int or float, not bool")
    if isinstance(arg, int | float):
        return repr(arg).encode()  # as redis-py: repr, for subclasses too
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, bytes):
        return arg
    raise TypeError(f"a Redis argument is bytes, str, int or float, not {type(arg).__name__}")


def _error(line: bytes) -> ReplyError:
    message = line.decode("utf-8", errors="replace")
    return NoScriptError(message) if message.split(" ", 1)[0] == "NOSCRIPT" else ReplyError(message)


def _length(line: bytes) -> int:
    try:
        return int(line)
    except ValueError:
        raise ProtocolError(f"not a RESP length: {line[:40]!r}") from None


def parse_reply(buf: bytes, pos: int) -> tuple[Any, int]:
    """The reply starting at ``pos`` and the position after it, or ``(None, -1)`` while it is incomplete.

    Simple strings and bulk strings are ``bytes``, integers ``int``, null bulk and null arrays ``None``,
    error replies ``ReplyError`` instances (inside arrays too: raising is the caller's choice)."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None, _INCOMPLETE
    kind, line, after = buf[pos], buf[pos + 1:end], end + 2
    if kind == 36:  # $ bulk string
        size = _length(line)
        if size < 0:
            return None, after
        stop = after + size
        if len(buf) < stop + 2:
            return None, _INCOMPLETE
        if buf[stop:stop + 2] != b"\r\n":
            raise ProtocolError("a bulk string longer than its length")
        return buf[after:stop], stop + 2
    if kind == 42:  # * array
        return _parse_array(buf, _length(line), after)
    if kind == 43:  # + simple string
        return line, after
    if kind == 58:  # : integer
        return _length(line), after
    if kind == 45:  # - error
        return _error(line), after
    raise ProtocolError(f"not a RESP2 reply: {buf[pos:end][:40]!r}")


def _parse_array(buf: bytes, count: int, pos: int) -> tuple[Any, int]:
    if count < 0:
        return None, pos
    items = []
    for _ in range(count):
        item, pos = parse_reply(buf, pos)
        if pos == _INCOMPLETE:
            return None, _INCOMPLETE
        items.append(item)
    return items, pos


class ReplyParser:
    """Replies out of a byte stream cut anywhere: ``feed`` returns the replies its bytes completed.

    An incomplete reply is parsed again from its start when more bytes come; the limits backend's
    replies are a few dozen bytes, so that costs less than keeping a resumable parse state."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[Any]:
        buf = self._buf + data if self._buf else data
        replies, pos = [], 0
        while pos < len(buf):
            reply, after = parse_reply(buf, pos)
            if after == _INCOMPLETE:
                break
            replies.append(reply)
            pos = after
        self._buf = buf[pos:]
        return replies


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """Where Redis is and who to be there; ``where`` is safe to log (no password)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = None
    db: int = 0

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_url(cls, url: str) -> RedisAddress:
        """``redis://[[user]:password@]host[:port][/db]``. TLS (``rediss://``) and unix sockets are refused:
        this client speaks plain TCP only, and a silent downgrade would send the password in clear."""
        parts = urlsplit(url)
        if parts.scheme != "redis":
            raise ConfigError(f"redis url: the scheme {parts.scheme + '://'!r} is not supported; use redis://"
                              " (rediss:// TLS and unix:// sockets are not supported by the limits backend)")
        if parts.query:
            raise ConfigError("redis url: query parameters are not supported; put the db in the path (/0)")
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ConfigError("redis url: the path is the db number, for example redis://host:6379/0")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise ConfigError("redis url: the port is not a number from 0 to 65535") from None
        return cls(parts.hostname or "127.0.0.1", port, unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password is not None else None, int(path or 0))


class _RespProtocol(asyncio.Protocol):
    """One connection: writes commands, matches replies to the FIFO of waiting futures.

    Timeouts are kept by one lazy watchdog, not a timer per command: only the oldest command can be
    late (Redis answers in order), so the watchdog wakes at its deadline, and if it has been answered
    by then, sleeps again until the deadline of the one now oldest."""

    def __init__(self, loop: asyncio.AbstractEventLoop, where: str, timeout: float) -> None:
        self._loop, self._where, self._timeout = loop, where, timeout
        self._parser = ReplyParser()
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._transport: asyncio.Transport | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def send(self, payload: bytes) -> asyncio.Future[Any]:
        """Write one command; its future resolves to its reply."""
        if self._transport is None:
            raise RedisUnavailable(f"redis at {self._where}: the connection is closed")
        future = self._loop.create_future()
        deadline = self._loop.time() + self._timeout
        self._waiting.append((future, deadline))
        self._transport.write(payload)
        if self._watchdog is None:
            self._watchdog = self._loop.call_at(deadline, self._check_deadline)
        return future

    def send_many(self, payload: bytes, replies: int) -> list[asyncio.Future[Any]]:
        """Write several commands at once; one future per reply."""
        if self._transport is None:
            raise RedisUnavailable(f"redis at {self._where}: the connection is closed")
        deadline = self._loop.time() + self._timeout
        futures = [self._loop.create_future() for _ in range(replies)]
        self._waiting.extend((future, deadline) for future in futures)
        self._transport.write(payload)
        if self._watchdog is None:
            self._watchdog = self._loop.call_at(deadline, self._check_deadline)
        return futures

    def data_received(self, data: bytes) -> None:
        try:
            replies = self._parser.feed(data)
        except ProtocolError as exc:
            self._fail(f"{type(exc).__name__}: {exc}")
            return
        waiting = self._waiting
        for reply in replies:
            if not waiting:
                self._fail("a reply no command asked for")
                return
            future = waiting.popleft()[0]
            if not future.done():  # a caller cancelled: its reply is read all the same, and dropped
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("the connection was closed" if exc is None else f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        self._fail("the client was closed")

    def _check_deadline(self) -> None:
        self._watchdog = None
        if not self._waiting:
            return
        deadline = self._waiting[0][1]
        if deadline <= self._loop.time() + 0.001:  # uvloop's timers are in ms: one can fire a little early
            self._fail(f"no reply within {self._timeout:g} s")
        else:
            self._watchdog = self._loop.call_at(deadline, self._check_deadline)

    def _fail(self, why: str) -> None:
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.abort()
        waiting, self._waiting = self._waiting, deque()
        for future, _ in waiting:
            if not future.done():
                future.set_exception(RedisUnavailable(f"redis at {self._where}: {why}"))


class RespClient:
    """Commands on one pipelined connection, opened on first use and again after it was lost."""

    def __init__(self, address: RedisAddress, *, timeout: float = 0.5) -> None:
        self.address = address
        self._timeout = timeout
        self._conn: _RespProtocol | None = None
        self._opening: asyncio.Lock | None = None

    async def execute(self, *args: Arg) -> Any:
        """One command's reply; an error reply raises (``NoScriptError`` for NOSCRIPT).

        No retry: a command under a connection that closed fails, and the next one opens a new
        connection. A restarted Redis closes its connections, and the loop hears it before the next
        command is written unless it was busy then; so a restart costs at most one failed command."""
        conn = self._conn
        if conn is None or conn.closed:
            conn = await self._connection()
        reply = await conn.send(encode_command(args))
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    async def execute_many(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """Several commands in one write; the replies in order, error replies as ``ReplyError`` values."""
        conn = self._conn
        if conn is None or conn.closed:
            conn = await self._connection()
        payload = b"".join(encode_command(command) for command in commands)
        return await asyncio.gather(*conn.send_many(payload, len(commands)))

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _connection(self) -> _RespProtocol:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:  # concurrent first commands share one new connection
            if self._conn is None or self._conn.closed:
                self._conn = await self._open()
            return self._conn

    async def _open(self) -> _RespProtocol:
        loop = asyncio.get_running_loop()
        address = self.address
        protocol = _RespProtocol(loop, address.where, self._timeout)
        try:
            async with asyncio.timeout(self._timeout):
                await loop.create_connection(lambda: protocol, address.host, address.port)
        except TimeoutError:
            raise RedisUnavailable(f"redis at {address.where}: no connection within {self._timeout:g} s") from None
        except OSError as exc:
            raise RedisUnavailable(f"redis at {address.where}: {type(exc).__name__}: {exc.strerror or exc}") from None
        await self._hello(protocol)
        return protocol

    async def _hello(self, protocol: _RespProtocol) -> None:
        """AUTH and SELECT, pipelined: a refusal closes the connection and names no password."""
        address, commands = self.address, []
        if address.password is not None:
            commands.append(["AUTH", address.password] if address.username is None
                            else ["AUTH", address.username, address.password])
        if address.db:
            commands.append(["SELECT", address.db])
        if not commands:
            return
        futures = protocol.send_many(b"".join(encode_command(command) for command in commands), len(commands))
        for reply, command in zip(await asyncio.gather(*futures), commands, strict=True):
            if isinstance(reply, ReplyError):
                protocol.close()
                raise RedisUnavailable(f"redis at {address.where}: {command[0]} refused: {reply.message}")
