"""A loopback server that reads each HTTP/1.1 request and answers with a scripted function writing
raw bytes to the socket: heads of any size, bodies trickled a byte at a time, answers held until
the test releases them. For wire tests of the gateway's own transports (a real server in a thread).

    with RawServer(trickle(b'{"ok": true}', every=0.1)) as server:
        ...  # aim a deployment or destination at server.url
        server.wait_requests(1)

A script runs in the connection's thread after the request was read; it returns ``True`` to keep
the connection for another request. Whatever the peer does (close, reset) ends the script quietly:
``dropped`` counts connections whose writes failed because the peer went away.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

Script = Callable[[socket.socket, "RawServer"], bool]
WAIT = 10.0  # how long a test waits for the server to see something (a bound, never asserted)


class RawServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests = 0
        self.dropped = 0
        self.release = threading.Event()  # held answers (``held``) go on once set
        self._cond = threading.Condition()
        self._conns: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.05)  # so the accept loop notices close()
        self.port: int = self._server.getsockname()[1]
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="raw-upstream", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        self.release.set()
        self._server.close()
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.close()
        self._thread.join(WAIT)

    def wait_requests(self, count: int) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.requests >= count, WAIT):
                raise AssertionError(f"{self.requests} requests reached the server, not {count}")

    def wait_dropped(self, count: int) -> None:
        """Until ``count`` connections were dropped by the peer in the middle of an answer."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.dropped >= count, WAIT):
                raise AssertionError(f"{self.dropped} connections were dropped mid-answer, not {count}")

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = conn.makefile("rb")
        try:
            while _read_request(reader):
                with self._cond:
                    self.requests += 1
                    self._cond.notify_all()
                if not self.script(conn, self):
                    break
        except OSError:
            with self._cond:
                self.dropped += 1
                self._cond.notify_all()
        finally:
            with contextlib.suppress(OSError):
                conn.close()


def _read_request(reader: socket.SocketIO | object) -> bool:
    """One request head and body; ``False`` when the peer closed first."""
    length = 0
    line = reader.readline()  # type: ignore[attr-defined]
    if not line:
        return False
    while True:
        line = reader.readline()  # type: ignore[attr-defined]
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    reader.read(length)  # type: ignore[attr-defined]
    return True


def head(status: int, length: int) -> bytes:
    return b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (status, length)


def answer(status: int, body: bytes) -> bytes:
    return head(status, len(body)) + body


def fixed(status: int, body: bytes) -> Script:
    def script(conn: socket.socket, _server: RawServer) -> bool:
        conn.sendall(answer(status, body))
        return True
    return script


def huge_head(total: int, then: bytes) -> Script:
    """A 200 head of ``total`` bytes of 1 KiB header lines, then ``then`` (its end and a body)."""
    line = b"X-Pad: " + b"p" * 1015 + b"\r\n"

    def script(conn: socket.socket, _server: RawServer) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        for _ in range(total // len(line)):
            conn.sendall(line)
        conn.sendall(then)
        return False
    return script


def trickle(body: bytes, every: float) -> Script:
    """A well-framed 200 whose body comes one byte each ``every`` seconds (each read is quick)."""
    def script(conn: socket.socket, server: RawServer) -> bool:
        conn.sendall(head(200, len(body)))
        for byte in body:
            if server.release.wait(every):
                return False
            conn.sendall(bytes([byte]))
        return True
    return script


def held(status: int, body: bytes) -> Script:
    """Answers only once the test sets ``server.release`` (or the server closes)."""
    def script(conn: socket.socket, server: RawServer) -> bool:
        server.release.wait()
        conn.sendall(answer(status, body))
        return False
    return script


def trickle_stream(events: list[bytes], every: float) -> Script:
    """A chunked SSE 200 that writes one event each ``every`` seconds, then ends."""
    def script(conn: socket.socket, server: RawServer) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        for event in events:
            if server.release.wait(every):
                return False
            conn.sendall(b"%x\r\n%b\r\n" % (len(event), event))
        conn.sendall(b"0\r\n\r\n")
        return True
    return script
