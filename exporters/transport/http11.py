"""A lean synchronous HTTP/1.1 transport for the exporters' shared httpx clients.

Why: with many teams each on its own Langfuse project, every export request carries one span and
its fixed cost is the whole cost. Measured in-process (``bench/export_cost.py steps``, one span,
loopback stand-in, thread CPU): ``httpx.Client.post`` on httpx's default transport (httpcore + h11)
~0.42 ms, of which the transport ~0.31 ms; encoding and gzip of the span 0.06 ms; the spool's
read + acknowledgement 0.014 ms. This transport does what an export needs and nothing more: one
buffered body written with one ``sendall``, the answer read whole with httptools' parser.

Behaviour (the same rules as ``app.wire.http11``, the request path's async transport; the framing
and the request head are the ones both share, ``contracts.http11`` and ``contracts.request_head``):
- connections are pooled per (scheme, host, port), whatever the credentials in the headers, so
  1,000 projects on one Langfuse host share a handful of connections; reused only after a complete
  answer that allowed keep-alive, dropped after ``keepalive_expiry`` idle seconds, or when the
  socket is readable while idle (the server closed it, or sent bytes nobody asked for);
- at most ``max_idle_per_host`` idle connections are kept per host; there is no cap on connections
  in use: the delivery pool's threads bound them;
- ``timeout`` extension as httpx sends it: ``connect`` bounds connecting and the TLS handshake,
  ``write`` the ``sendall``, ``read`` each wait for answer bytes;
- failures are httpx's exceptions (ConnectError, ConnectTimeout, WriteError, WriteTimeout,
  ReadError, ReadTimeout, RemoteProtocolError, LocalProtocolError), so ``exporters.transport.answers`` maps them
  as before; ``connect_check(host, address)`` runs before connecting to a literal address and again
  on the connected peer, before TLS and before a byte is written (the callback policy);
- the answer's body is read whole (export answers are short), at most ``max_body`` bytes; its head
  at most ``MAX_RESPONSE_HEAD`` bytes (``ResponseHeadTooLarge``, the connection dropped);
- ``deadline`` bounds the whole exchange (connecting, writing, the answer to its last byte): a
  destination that trickles its answer a byte at a time would otherwise hold a delivery thread for
  as long as it likes, since each read on its own is quick.

Proven against httpx's default transport by ``tests/exporters/transport/test_client_differential.py``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable

import httpx

from contracts.http11 import ResponseFraming, Wording
from contracts.request_head import serialize

_Key = tuple[str, str, int]
Exchanged = tuple[int, list[tuple[bytes, bytes]], bytes]  # status, raw headers, raw body
ConnectCheck = Callable[[str, "ipaddress.IPv4Address | ipaddress.IPv6Address"], None]
_RECV = 65536
# The delivery layer's export_timeout: an export still running then is counted as timed out, and
# now also ends then.
DEFAULT_DEADLINE = 10.0
_SLACK = 0.05  # seconds a socket timeout may overrun the deadline rather than be set again
_SERVER = Wording(peer="the server", invalid="invalid HTTP answer")


class _Answer(ResponseFraming):
    """One exchange's answer, read whole: the framing core's callbacks with a bound on the body."""

    def __init__(self, head_only: bool, max_body: int) -> None:
        self.head_only, self.max_body = head_only, max_body
        self.chunks: list[bytes] = []
        self.size = 0
        super().__init__(_SERVER)

    def head_done(self) -> None:
        if self.head_only:
            self.complete, self.keep_alive = True, False  # never reused: simpler than skipping a body

    def on_body(self, body: bytes) -> None:
        if self.complete or self.error is not None:
            return
        self.size += len(body)
        if self.size > self.max_body:
            self.fail(httpx.RemoteProtocolError(f"the answer's body is larger than {self.max_body} bytes"))
            return
        self.chunks.append(body)


class _Connection:
    __slots__ = ("idle_since", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.idle_since = 0.0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def usable(self, now: float, expiry: float) -> bool:
        if now - self.idle_since > expiry:
            return False
        try:  # readable while idle: closed by the server, or bytes nobody asked for
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable


class ExportTransport(httpx.BaseTransport):
    def __init__(self, *, verify: ssl.SSLContext | str | bool = True, max_idle_per_host: int = 16,
                 keepalive_expiry: float = 30.0, connect_check: ConnectCheck | None = None,
                 max_body: int = 16 << 20, deadline: float | None = DEFAULT_DEADLINE) -> None:
        self._verify = verify
        self._deadline = deadline
        self._ssl: ssl.SSLContext | None = None
        self._max_idle, self._expiry, self._check, self._max_body = max_idle_per_host, keepalive_expiry, \
            connect_check, max_body
        self._idle: dict[_Key, list[_Connection]] = {}
        self._lock = threading.Lock()
        self._names_ok: set[bytes] = set()
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {scheme!r}")
        message = serialize(request, request.read(), self._names_ok)  # refused before a byte is written
        return self.send_message(url, message, request.extensions.get("timeout", {}), request.method == "HEAD")

    def send_message(self, url: httpx.URL, message: bytes, timeouts: dict[str, float | None],
                     head_only: bool = False) -> httpx.Response:
        """Write ``message`` (a whole, already checked request) to ``url``'s origin; the answer read whole."""
        status, headers, body = self.exchange(url, message, timeouts, head_only)
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body),
                              extensions={"http_version": b"HTTP/1.1"})

    def exchange(self, url: httpx.URL, message: bytes, timeouts: dict[str, float | None],
                 head_only: bool = False) -> Exchanged:
        """``send_message`` without building an ``httpx.Response``: status, raw headers, raw body."""
        scheme = url.scheme
        key = (scheme, url.raw_host.decode("ascii"), url.port or (443 if scheme == "https" else 80))
        deadline = _Deadline(self._deadline)
        conn = self._checkout(key) or self._connect(key, deadline.cut(timeouts.get("connect")))
        try:
            self._send(conn, message, deadline.cut(timeouts.get("write")))
            answer = self._receive(conn, head_only, timeouts.get("read"), deadline)
        except BaseException:
            conn.close()
            raise
        if answer.complete and answer.keep_alive:
            self._checkin(key, conn)
        else:
            conn.close()
        body = answer.chunks[0] if len(answer.chunks) == 1 else b"".join(answer.chunks)
        return answer.status, answer.headers, body

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    # -- the pool --------------------------------------------------------------------------------
    def _checkout(self, key: _Key) -> _Connection | None:
        now = time.monotonic()
        while True:
            with self._lock:
                conns = self._idle.get(key)
                if not conns:
                    return None
                conn = conns.pop()  # the most recently used: least likely to have been closed
            if conn.usable(now, self._expiry):
                return conn
            conn.close()

    def _checkin(self, key: _Key, conn: _Connection) -> None:
        conn.idle_since = time.monotonic()
        with self._lock:
            if not self._closed:
                conns = self._idle.setdefault(key, [])
                if len(conns) < self._max_idle:
                    conns.append(conn)
                    return
        conn.close()

    def _connect(self, key: _Key, timeout: float | None) -> _Connection:
        scheme, host, port = key
        if self._check is not None:
            literal = _address(host)
            if literal is not None:
                self._check(host, literal)
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc)) from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._check is not None:
                peer = _address(sock.getpeername()[0])
                if peer is not None:
                    self._check(host, peer)
            if scheme == "https":
                sock = self._tls(sock, host)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    def _tls(self, sock: socket.socket, host: str) -> socket.socket:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context(verify=self._verify)
        try:
            return self._ssl.wrap_socket(sock, server_hostname=host)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"TLS handshake with {host} timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc)) from exc

    # -- one exchange ----------------------------------------------------------------------------
    @staticmethod
    def _send(conn: _Connection, message: bytes, timeout: float | None) -> None:
        try:
            conn.sock.settimeout(timeout)
            conn.sock.sendall(message)
        except TimeoutError as exc:
            raise httpx.WriteTimeout(f"no progress writing the request within {timeout:g}s") from exc
        except OSError as exc:
            raise httpx.WriteError(str(exc)) from exc

    def _receive(self, conn: _Connection, head_only: bool, timeout: float | None, deadline: _Deadline) -> _Answer:
        answer = _Answer(head_only, self._max_body)
        sock = conn.sock
        while not answer.complete:
            if deadline.passed():  # a trickle: every recv returns in time, the answer never ends
                raise deadline.timeout(timeout)
            deadline.apply(sock, timeout)
            try:
                data = sock.recv(_RECV)
            except TimeoutError as exc:
                raise deadline.timeout(timeout) from exc
            except OSError as exc:
                raise httpx.ReadError(str(exc)) from exc
            if not data:
                if answer.until_close and answer.error is None:  # the close is the end of this body
                    answer.complete = True
                    break
                raise httpx.RemoteProtocolError("the server closed the connection before the answer was complete")
            answer.feed(data)
        return answer


class _Deadline:
    """The end of one exchange (monotonic), which every socket timeout of it is cut to."""

    __slots__ = ("at", "seconds")

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds

    def cut(self, timeout: float | None) -> float | None:
        if self.at is None:
            return timeout
        # Never 0: that makes the socket non-blocking (BlockingIOError); a microsecond times out alike.
        left = max(1e-6, self.at - time.monotonic())
        return left if timeout is None else min(timeout, left)

    def passed(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at

    def apply(self, sock: socket.socket, timeout: float | None) -> None:
        """Set ``sock``'s timeout to ``cut(timeout)`` unless it is already within ``_SLACK`` of it:
        each ``settimeout`` is a system call, and the deadline moves on between two reads."""
        wanted, current = self.cut(timeout), sock.gettimeout()
        if current != wanted and (current is None or wanted is None or abs(current - wanted) > _SLACK):
            sock.settimeout(wanted)

    def timeout(self, read: float | None) -> httpx.ReadTimeout:
        if read is None or (self.at is not None and time.monotonic() >= self.at):
            return httpx.ReadTimeout(f"the answer did not end within {self.seconds:g}s (the export's deadline)")
        return httpx.ReadTimeout(f"no answer bytes within {read:g}s")


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return None
