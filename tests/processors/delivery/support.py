"""Test doubles for delivery tests: spans with known ids, an exporter that POSTs span ids, a
ledger of what a sink accepted, a black-hole TCP server and a port that refuses connections."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext, SpanKind

from contracts.failures import ExportFailure
from exporters.transport.answers import post_batch
from exporters.transport.poster import HttpxPoster
from tests.support.sinks import Received, Reply

JSON = {"content-type": "application/json"}

RESOURCE = Resource({"service.name": "spangate-test"})


def make_span(i: int, pad: int = 0) -> ReadableSpan:
    """Span ``i`` (span id ``i``); the attribute has a fixed width so every span encodes to one size."""
    return ReadableSpan(
        name="chat test-model",
        context=SpanContext(0xFEED, i, is_remote=False),
        resource=RESOURCE,
        kind=SpanKind.CLIENT,
        attributes={"i": f"{i:08d}", "pad": "x" * pad},
        start_time=1_000_000_000,
        end_time=2_000_000_000,
    )


class IdsSpanExporter(SpanExporter):
    """POSTs ``{"ids": [...]}`` through an injected client; reports failures as ``ExportFailure``."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        self._client, self._url = client, url
        self._http = HttpxPoster(client)
        self.last_failure: ExportFailure | None = None
        self.attempts = 0
        self.shut_down = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.attempts += 1
        ids = [s.context.span_id for s in spans if s.context is not None]
        self.last_failure = post_batch(self._http, self._url, lambda: json.dumps({"ids": ids}).encode(), JSON)
        return SpanExportResult.SUCCESS if self.last_failure is None else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.shut_down = True
        self._client.close()


def ids_exporter(url: str, timeout: float = 5.0) -> IdsSpanExporter:
    return IdsSpanExporter(httpx.Client(timeout=timeout), f"{url}/ingest")


@dataclass
class Ledger:
    """A sink responder: ``script(ids)`` picks the reply; accepted ids and attempt times are kept."""

    script: Callable[[list[int]], Reply] = lambda _ids: Reply()
    accepted: list[int] = field(default_factory=list)
    accepted_at: dict[int, float] = field(default_factory=dict)
    attempts: list[tuple[float, list[int], int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Received) -> Reply:
        ids = json.loads(request.body)["ids"]
        reply = self.script(ids)
        now = time.monotonic()
        with self.lock:
            self.attempts.append((now, ids, reply.status))
            if 200 <= reply.status < 300:
                self.accepted.extend(ids)
                for i in ids:
                    self.accepted_at.setdefault(i, now)
        return reply


class BlackHole:
    """Accepts TCP connections and never answers (nor reads); closing it resets them all."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.05)  # so the accept loop notices close()
        self._conns: list[socket.socket] = []
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)

    def __enter__(self) -> BlackHole:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        self._server.close()
        for conn in self._conns:
            conn.close()


def refused_url() -> str:
    """A loopback port with nothing listening: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(0.01)
