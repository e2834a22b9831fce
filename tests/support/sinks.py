"""Loopback HTTP sinks that stand in for destinations without a local server.

A sink records every request it receives (path, headers, decompressed body) and answers with
whatever its ``respond`` callable returns, so tests can script outages, rate limits and slow
answers and then check the real wire format the exporters produced.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes  # already gunzipped when the request said Content-Encoding: gzip
    raw_body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0


Responder = Callable[[Received], Reply]


def always(status: int = 200, body: bytes = b"{}") -> Responder:
    return lambda _req: Reply(status=status, body=body)


class HttpSink:
    """A threaded HTTP server on 127.0.0.1 that records requests; use as a context manager."""

    def __init__(self, respond: Responder | None = None) -> None:
        self.respond: Responder = respond or always()
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = raw
                if self.headers.get("Content-Encoding", "").lower() == "gzip" and raw:
                    body = gzip.decompress(raw)
                req = Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, raw)
                reply = sink.respond(req)
                with sink._cond:
                    sink.requests.append(req)
                    sink._cond.notify_all()
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_POST = do_PUT = do_GET = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for the serve loop's next poll (0.5 s by default).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HttpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 10.0) -> list[Received]:
        """Block until ``predicate(requests)`` holds; fail loudly with what did arrive."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.requests):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"sink condition not met in {timeout}s; got {len(self.requests)} requests")
                self._cond.wait(left)
            return list(self.requests)
