"""A lean HTTP/1.1 client transport for httpx: asyncio protocols, httptools' parser, a keep-alive pool.

Deployments build ``httpx.Request`` objects and the OpenTelemetry httpx instrumentation wraps this
transport, so httpx stays the client API. Underneath, a proxy needs far less than a general
client: one request per connection at a time, buffered request bodies, no redirects, cookies or
compression handling; egress proxies (absolute form and CONNECT) are in ``app.wire.egress``.
Measured on the bench, aiohttp (through httpx-aiohttp) cost ~0.3 ms of CPU per upstream call;
this transport ~0.1 ms (see bench/README.md).

Behaviour:
- connections are pooled per (scheme, host, port), reused only after a complete response that
  allowed keep-alive, dropped after ``keepalive_expiry`` idle seconds or when the server closed them;
- ``timeout`` extension as httpx sends it: ``connect`` bounds connecting (and the TLS handshake),
  ``read`` bounds each wait for response bytes, ``pool`` bounds the wait for a free connection
  when ``max_connections`` in all, or ``max_per_origin`` to the call's origin, are open. Two more
  keys httpx does not have: ``total`` bounds the whole exchange, from the call to the body's last
  byte, and ``head`` the part up to the response head (a stream's body may then run as long as its
  reads keep coming). Per-read timeouts alone let an upstream that trickles a byte within each one
  hold a call for as long as it likes;
- failures are httpx's exceptions (ConnectError, ConnectTimeout, ReadTimeout, PoolTimeout,
  RemoteProtocolError, ReadError), so callers and the instrumentation see one family;
- a response body that is closed before its end, or a cancelled call, closes its connection;
- reading pauses when a streamed body is not consumed (64 KiB buffered), so a slow client of a
  stream does not make the gateway buffer the upstream's whole answer;
- a response head (status line, headers, interim 1xx heads included) over ``MAX_RESPONSE_HEAD``
  bytes fails the call with ``ResponseHeadTooLarge`` and drops the connection: httptools joins a
  header's pieces by concatenation, so an unbounded head cost memory and quadratic CPU on the loop
  (one 128 MB header value stalled every call for 17 s).

The pool and the call are here; one connection is ``app.wire.connection``; the response framing and
the request head are shared with the exporters' transport (``contracts.http11``, ``contracts.request_head``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from app.wire.connection import Connection, Key, within
from app.wire.egress import ProxyRoutes, open_tunnel
from contracts.request_head import serialize


def _deadlines(timeouts: dict[str, Any], loop: asyncio.AbstractEventLoop) -> tuple[float | None, float | None]:
    """(until the head, until the body's end) in loop time, from the ``total`` and ``head`` keys."""
    now = loop.time()
    total, head = timeouts.get("total"), timeouts.get("head")
    body_deadline = None if total is None else now + total
    head_deadline = body_deadline if head is None else now + head
    if body_deadline is not None and head_deadline is not None:
        head_deadline = min(head_deadline, body_deadline)
    return head_deadline, body_deadline


class _Body(httpx.AsyncByteStream):
    def __init__(self, pool: Http11Transport, conn: Connection, read_timeout: float | None,
                 deadline: float | None) -> None:
        self._pool, self._conn, self._timeout, self._deadline = pool, conn, read_timeout, deadline
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        try:
            while True:
                if conn.chunks:
                    yield conn.take()
                    continue
                if conn.error is not None:
                    raise conn.error
                if conn.complete:
                    break
                await conn.wait(self._timeout, self._deadline)
        except BaseException:
            self._release(reusable=False)
            raise
        self._release(reusable=True)

    async def aclose(self) -> None:
        self._release(reusable=False)

    def _release(self, *, reusable: bool) -> None:
        if not self._released:
            self._released = True
            self._pool.release(self._conn, reusable=reusable and self._conn.finish())


PoolTimeoutHook = Callable[[str, int], None]  # (host, port) of the origin a call waited for in vain


class Http11Transport(httpx.AsyncBaseTransport):
    """``max_per_origin``: connections to one (scheme, host, port), idle ones included, so one slow
    upstream holding its calls open cannot take every slot (``None``: ``max_connections``).
    ``on_pool_timeout``: told of each call that gave up waiting for a slot (a metric)."""

    def __init__(self, *, max_connections: int = 1000, max_per_origin: int | None = None,
                 keepalive_expiry: float = 60.0, ssl_context: ssl.SSLContext | None = None,
                 proxies: ProxyRoutes | None = None, on_pool_timeout: PoolTimeoutHook | None = None) -> None:
        self._proxies = proxies
        self._names_ok: set[bytes] = set()  # header names already checked: the same few on every call
        self._max = max_connections
        self._per_origin = min(max_per_origin or max_connections, max_connections)
        self._expiry = keepalive_expiry
        self._ssl = ssl_context
        self._idle: dict[Key, deque[Connection]] = {}
        self._open = 0
        self._by_origin: dict[Key, int] = {}  # open connections per origin, idle ones included
        self._waiters: deque[tuple[Key, asyncio.Future[None]]] = deque()
        self._on_pool_timeout = on_pool_timeout

    # -- pool ------------------------------------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl

    def _checkout(self, key: Key) -> Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to have been closed
            if conn.closed or now - conn.idle_since > self._expiry:
                self._discard(conn)
                continue
            return conn
        return None

    async def _acquire(self, key: Key, timeouts: dict[str, Any], head_deadline: float | None) -> Connection:
        """An idle connection to ``key`` or a new one; waits (``pool`` timeout) while all are busy."""
        loop = asyncio.get_running_loop()
        pool_timeout = within(timeouts.get("pool"), head_deadline, loop)
        deadline = None if pool_timeout is None else loop.time() + pool_timeout
        while True:
            conn = self._checkout(key)
            if conn is not None:
                return conn
            origin_full = self._by_origin.get(key, 0) >= self._per_origin
            if not origin_full and self._open >= self._max:
                self._evict_idle()  # an idle connection to another upstream gives up its slot
            if not origin_full and self._open < self._max:
                self._count(key)
                return await self._connect(key, within(timeouts.get("connect"), head_deadline, loop))
            entry = (key, loop.create_future())
            self._waiters.append(entry)
            try:
                await asyncio.wait_for(entry[1], None if deadline is None else max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise self._pool_timeout(key, origin_full) from None
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(entry)

    def _pool_timeout(self, key: Key, origin_full: bool) -> httpx.PoolTimeout:
        host = key[1].decode("ascii")
        if self._on_pool_timeout is not None:
            self._on_pool_timeout(host, key[2])
        if origin_full:
            return httpx.PoolTimeout(f"all {self._per_origin} connections to {host}:{key[2]} busy")
        return httpx.PoolTimeout(f"all {self._max} upstream connections busy")

    def _count(self, key: Key) -> None:
        self._open += 1
        self._by_origin[key] = self._by_origin.get(key, 0) + 1

    def _evict_idle(self) -> None:
        for idle in self._idle.values():
            if idle:
                self._discard(idle.popleft())
                return

    def _wake_one(self, freed: Key) -> None:
        """Wake the first waiter that can go on now that a connection to ``freed`` is free or idle:
        one for that origin, or one whose origin is under its cap. Scanned only while calls wait."""
        for i, (key, waiter) in enumerate(self._waiters):
            if not waiter.done() and (key == freed or self._by_origin.get(key, 0) < self._per_origin):
                del self._waiters[i]
                waiter.set_result(None)
                return

    async def _connect(self, key: Key, timeout: float | None) -> Connection:
        """Dial with a slot already counted in ``_open``; the slot is freed if dialing fails."""
        hostname, port = key[1].decode("ascii"), key[2]
        try:
            _transport, conn = await asyncio.wait_for(self._dial(key), timeout)
        except TimeoutError:
            self._free(key)
            raise httpx.ConnectTimeout(f"connecting to {hostname}:{port} timed out") from None
        except (OSError, ssl.SSLError) as exc:
            self._free(key)
            raise httpx.ConnectError(f"cannot connect to {hostname}:{port}: {exc}") from None
        except BaseException:
            self._free(key)
            raise
        return conn

    async def _dial(self, key: Key) -> tuple[asyncio.BaseTransport, Connection]:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        tls = scheme == b"https"
        proxy = self._proxies.for_origin(key) if self._proxies is not None else None
        if proxy is None:
            hostname = host.decode("ascii")
            return await loop.create_connection(lambda: Connection(key), hostname, port,
                                                ssl=self._ssl_context() if tls else None,
                                                server_hostname=hostname if tls else None)
        proxy_tls = self._ssl_context() if proxy.scheme == "https" else None
        if not tls:  # plain http: the proxy takes absolute-form requests (see handle_async_request)
            return await loop.create_connection(lambda: Connection(key), proxy.host, proxy.port, ssl=proxy_tls,
                                                server_hostname=proxy.host if proxy_tls else None)
        conn = Connection(key)
        return await open_tunnel(proxy, proxy_tls, key, conn, self._ssl_context()), conn

    def _free(self, key: Key) -> None:
        self._open -= 1
        left = self._by_origin.pop(key) - 1
        if left:
            self._by_origin[key] = left
        self._wake_one(key)

    def _discard(self, conn: Connection) -> None:
        conn.close()
        self._free(conn.key)

    def release(self, conn: Connection, *, reusable: bool) -> None:
        if not reusable:
            conn.head = None
            self._discard(conn)
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.key, deque()).append(conn)
        self._wake_one(conn.key)

    # -- the call --------------------------------------------------------------------------------
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key: Key = (url.raw_scheme, url.raw_host, url.port or (443 if url.raw_scheme == b"https" else 80))
        timeouts = request.extensions.get("timeout") or {}
        body = request.content if isinstance(request.stream, httpx.ByteStream) else await request.aread()
        forward = self._proxies.for_origin(key) if self._proxies is not None and key[0] == b"http" else None
        message = serialize(request, body, self._names_ok, forward)
        loop = asyncio.get_running_loop()
        head_deadline, body_deadline = _deadlines(timeouts, loop)
        conn = self._checkout(key) or await self._acquire(key, timeouts, head_deadline)
        head = conn.begin(loop)
        try:
            assert conn.transport is not None
            conn.transport.write(message)
            read = within(timeouts.get("read"), head_deadline, loop)
            try:
                await (asyncio.wait_for(head, read) if read is not None else head)
            except TimeoutError:
                raise httpx.ReadTimeout(f"upstream sent no response within {read:g}s") from None
        except BaseException:
            self.release(conn, reusable=False)  # cancelled or failed mid-exchange: never reuse
            raise
        stream = _Body(self, conn, timeouts.get("read"), body_deadline)
        return httpx.Response(conn.status, headers=conn.headers, stream=stream, request=request,
                              extensions={"http_version": b"HTTP/1.1"})

    async def aclose(self) -> None:
        for idle in self._idle.values():
            while idle:
                self._discard(idle.pop())
        self._idle.clear()
