"""A lean synchronous HTTP/1.1 transport for the exporters' shared httpx clients.

Why: with many teams each on its own Langfuse project, every export request carries one span and
its fixed cost is the whole cost. Measured in-process (``bench/export_cost.py steps``, one span,
loopback stand-in, thread CPU): ``httpx.Client.post`` on httpx's default transport (httpcore + h11)
~0.42 ms, of which the transport ~0.31 ms; encoding and gzip of the span 0.06 ms; the spool's
read + acknowledgement 0.014 ms. This transport does what an export needs and nothing more: one
buffered body written with one ``sendall``, the answer read whole with httptools' parser.

Behaviour (the same rules as ``app.wire.http11``, the request path's async transport):
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
from typing import Any

import httptools
import httpx

from app.wire.http11 import MAX_RESPONSE_HEAD, ResponseHeadTooLarge, head_room
from app.wire.request_head import check_header, serialize

_Key = tuple[str, str, int]
_Exchanged = tuple[int, list[tuple[bytes, bytes]], bytes]  # status, raw headers, raw body
ConnectCheck = Callable[[str, "ipaddress.IPv4Address | ipaddress.IPv6Address"], None]
_RECV = 65536
# The delivery layer's export_timeout: an export still running then is counted as timed out, and
# now also ends then.
DEFAULT_DEADLINE = 10.0
_SLACK = 0.05  # seconds a socket timeout may overrun the deadline rather than be set again


class _Answer:
    """httptools callbacks for one exchange; framing as in ``app.wire.http11._Connection``."""

    def __init__(self, head_only: bool, max_body: int) -> None:
        self.head_only, self.max_body = head_only, max_body
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.keep_alive = False
        self.complete = self.in_body = self.until_close = False
        self.framing = 0  # bit 1: Content-Length seen, bit 2: Transfer-Encoding seen
        self.error: Exception | None = None
        self.parser: httptools.HttpResponseParser | None = None
        self.head_bytes = 0  # bytes fed before the final head ended (interim heads included)

    def on_message_begin(self) -> None:
        if self.complete or self.in_body:  # a second answer nobody asked for
            self.keep_alive = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_body:  # a trailer: not part of the head (h11 and httpcore drop them too)
            return
        if len(name) in (14, 17):
            lower = name.lower()
            if lower == b"content-length":
                if self.framing & 1:
                    self._fail("the server sent more than one Content-Length")
                self.framing |= 1
            elif lower == b"transfer-encoding":
                self.framing |= 2
                if not value.rstrip().lower().endswith(b"chunked"):
                    self._fail("the server used a Transfer-Encoding other than chunked")
        self.headers.append((name, value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        if self.complete or self.error is not None or self.parser is None:
            return
        status = self.parser.get_status_code()
        if status < 200:
            if status == 101:
                self._fail("the server switched protocols without being asked")
            self.headers, self.framing = [], 0  # an interim answer (100, 103): the real one follows
            return
        self.status, self.in_body = status, True
        self.keep_alive = self.parser.should_keep_alive() and self.framing != 3
        if self.head_only:
            self.complete, self.keep_alive = True, False  # never reused: simpler than skipping a body
        elif not self.framing and status not in (204, 304):
            self.until_close, self.keep_alive = True, False

    def on_body(self, body: bytes) -> None:
        if self.complete or self.error is not None:
            return
        self.size += len(body)
        if self.size > self.max_body:
            self._fail(f"the answer's body is larger than {self.max_body} bytes")
            return
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.in_body and not self.complete and self.error is None:
            self.complete = True

    def _fail(self, message: str) -> None:
        if self.error is None:
            self.error = httpx.RemoteProtocolError(message)


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
                 head_only: bool = False) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
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
        parser = answer.parser = httptools.HttpResponseParser(answer)
        # Content-Length beside Transfer-Encoding: RFC 9112 says Transfer-Encoding wins (h11 agrees);
        # such a connection is never reused (framing == 3).
        parser.set_dangerous_leniencies(lenient_chunked_length=True)
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
            _feed(answer, parser, data)
            if answer.error is not None:
                raise answer.error
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


def _feed(answer: _Answer, parser: httptools.HttpResponseParser, data: bytes) -> None:
    """The parser sees at most ``MAX_RESPONSE_HEAD`` bytes before the head ends (it joins a header's
    pieces by concatenation: an unbounded head is memory and quadratic CPU)."""
    if not answer.in_body:
        data, rest = head_room(answer.head_bytes, data)
        answer.head_bytes += len(data)
        _parse(answer, parser, data)
        if answer.error is None and not answer.in_body and (rest or answer.head_bytes >= MAX_RESPONSE_HEAD):
            raise ResponseHeadTooLarge()
        data = rest
    if data and answer.error is None:
        _parse(answer, parser, data)


def _parse(answer: _Answer, parser: httptools.HttpResponseParser, data: bytes) -> None:
    try:
        parser.feed_data(data)
    except httptools.HttpParserError as exc:
        if not answer.complete:
            raise httpx.RemoteProtocolError(f"invalid HTTP answer: {exc}") from exc
        answer.keep_alive = False  # garbage after a complete answer: only the connection goes


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return None


class ExportAnswer:
    """What ``ExportClient.post_answer`` returns: the status at once; headers, body and text through
    an ``httpx.Response`` built only when one of them is read (decoded as httpx decodes them), which
    an exporter does only for a failure. Building and reading that response and its request cost
    ~50 us a POST on a 2-core box, a tenth of a one-span export."""

    __slots__ = ("_body", "_headers", "_response", "status_code")

    def __init__(self, status_code: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status_code, self._headers, self._body = status_code, headers, body
        self._response: httpx.Response | None = None

    @classmethod
    def of(cls, response: httpx.Response) -> ExportAnswer:
        answer = cls(response.status_code, response.headers.raw, b"")
        answer._response = response
        return answer

    @property
    def response(self) -> httpx.Response:
        if self._response is None:
            response = httpx.Response(self.status_code, headers=self._headers, stream=httpx.ByteStream(self._body),
                                      extensions={"http_version": b"HTTP/1.1"})
            response.read()
            self._response = response
        return self._response

    @property
    def headers(self) -> httpx.Headers:
        return self.response.headers

    @property
    def content(self) -> bytes:
        return self.response.content

    @property
    def text(self) -> str:
        return self.response.text


class ExportClient(httpx.Client):
    """An ``httpx.Client`` on ``ExportTransport`` whose ``post`` of a bytes body skips what an export
    never uses: base-URL merging, auth, redirects, event hooks, the per-request log line, and
    cookies, which a client shared by every team must not carry from one team's answer into another
    team's request anyway. The request head for a (URL, headers) pair is built once by httpx and
    ``serialize`` (so it is checked, and byte for byte what httpx would write) and cached; a POST is
    then that head, a Content-Length and the body. The client's timeout applies as usual; its
    default headers are read when a head is first built (assigning ``client.headers`` clears the
    cache). Any other call goes through httpx unchanged. Measured (``bench/export_cost.py steps``):
    ``post`` 0.42 ms on httpx's stack, 0.26 ms with only the transport replaced, ~0.08 ms here.
    """

    _MAX_HEADS = 4096  # one per destination; bounded all the same

    def __init__(self, *, transport: ExportTransport | None = None, **kwargs: Any) -> None:
        if "mounts" in kwargs or "proxy" in kwargs or kwargs.get("trust_env", True):
            # trust_env would let httpx mount the environment's proxies, which the fast path skips.
            raise ValueError("ExportClient sends directly (trust_env=False, no proxy or mounts); "
                             "build a plain httpx.Client for proxied routes")
        self._heads: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[httpx.URL, bytes]] = {}
        super().__init__(transport=transport or ExportTransport(), cookies=None, **kwargs)
        self._direct: ExportTransport = transport or self._transport  # type: ignore[assignment]
        self._default_timeout = self.timeout.as_dict()
        self._names_ok: set[bytes] = set()

    @property  # type: ignore[override]
    def headers(self) -> httpx.Headers:
        return super().headers

    @headers.setter
    def headers(self, headers: Any) -> None:
        httpx.Client.headers.fset(self, headers)  # type: ignore[attr-defined]
        self._heads = {}

    def post(self, url: httpx.URL | str, *, content: Any = None, headers: Any = None,
             timeout: Any = httpx.USE_CLIENT_DEFAULT, **kwargs: Any) -> httpx.Response:
        if not self._fast(url, content, headers, kwargs):
            return super().post(url, content=content, headers=headers, timeout=timeout, **kwargs)
        parsed, (status, raw_headers, body) = self._exchange(url, content, headers, timeout)  # type: ignore[arg-type]
        response = httpx.Response(status, headers=raw_headers, stream=httpx.ByteStream(body),
                                  extensions={"http_version": b"HTTP/1.1"})
        response.request = httpx.Request("POST", parsed)
        response.read()
        return response

    def post_answer(self, url: str, *, content: bytes, headers: dict[str, str] | None = None,
                    timeout: Any = httpx.USE_CLIENT_DEFAULT, extra: dict[str, str] | None = None) -> ExportAnswer:
        """``post`` for an exporter: the same request on the wire, the answer as an ``ExportAnswer``.

        ``extra``: headers that change with every POST (an idempotency key), sent as if they ended
        ``headers``, without making each POST a new cached head."""
        if not self._fast(url, content, headers, {}) or (extra and not self._appendable(headers, extra)):
            merged = {**(headers or {}), **extra} if extra else headers
            return ExportAnswer.of(super().post(url, content=content, headers=merged, timeout=timeout))
        _parsed, (status, raw_headers, body) = self._exchange(url, content, headers, timeout, extra)
        return ExportAnswer(status, raw_headers, body)

    def _appendable(self, headers: dict[str, str] | None, extra: dict[str, str]) -> bool:
        """httpx puts a new name after the others, just before the framing; a name it already has
        (the client's defaults, ``headers``) it would replace in place: those take the full path."""
        taken = {name.lower() for name in self.headers} | {name.lower() for name in headers or ()} | {
            "content-length", "transfer-encoding", "host"}
        return all(name.lower() not in taken and name.isascii() and value.isascii() for name, value in extra.items())

    def _fast(self, url: Any, content: Any, headers: Any, kwargs: dict[str, Any]) -> bool:
        return not kwargs and type(content) is bytes and type(url) is str and isinstance(headers, dict | None) \
            and self.base_url.raw_path == b"/" and not self.is_closed

    def _exchange(self, url: str, content: bytes, headers: dict[str, str] | None, timeout: Any,
                  extra: dict[str, str] | None = None) -> tuple[httpx.URL, _Exchanged]:
        key = (url, tuple(headers.items()) if headers else ())
        cached = self._heads.get(key)
        if cached is None:
            cached = self._head(url, headers)
            if len(self._heads) < self._MAX_HEADS:
                self._heads[key] = cached
        parsed, head = cached
        if extra:
            lines = []
            for name, value in extra.items():
                raw_name, raw_value = name.encode("ascii"), value.encode("ascii")
                check_header(raw_name, raw_value)
                lines.append(b"%b: %b\r\n" % (raw_name, raw_value))
            head += b"".join(lines)
        limits = self._default_timeout if timeout is httpx.USE_CLIENT_DEFAULT else httpx.Timeout(timeout).as_dict()
        message = b"%bContent-Length: %d\r\n\r\n%b" % (head, len(content), content)
        return parsed, self._direct.exchange(parsed, message, limits)

    def _head(self, url: str, headers: dict[str, str] | None) -> tuple[httpx.URL, bytes]:
        """The request line and headers httpx would write for this POST, checked, without framing."""
        request = self.build_request("POST", url, content=b"", headers=headers)
        message = serialize(request, b"", self._names_ok)
        end = b"Content-Length: 0\r\n\r\n"
        assert message.endswith(end)  # serialize puts the framing last, for every POST
        return request.url, message[: -len(end)]
