"""The interface exporters post through (``exporters.transport.poster``): which ``Poster`` a client
becomes, what ``HttpxPoster`` sends, and when ``ExportClient`` takes httpx's own path."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from exporters.transport.answers import GzipPostSpanExporter, post_batch
from exporters.transport.client import ExportClient
from exporters.transport.poster import HttpxPoster, poster_for
from tests.app.wire.test_http11_differential import DEADLINE
from tests.support.scripted_http import Play, ScriptedServer, own_path


class Recording(httpx.MockTransport):
    def __init__(self, status: int = 200) -> None:
        self.requests: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return httpx.Response(status, text="slow down" if status >= 400 else "{}")

        super().__init__(answer)


def test_the_lean_client_is_its_own_poster_and_any_other_client_is_wrapped() -> None:
    with ExportClient(trust_env=False) as lean, httpx.Client() as plain:
        assert poster_for(lean) is lean
        wrapped = poster_for(plain)
        assert isinstance(wrapped, HttpxPoster) and wrapped.client is plain


def test_httpx_poster_sends_extra_headers_after_the_others_with_the_timeout_given() -> None:
    transport = Recording()
    with httpx.Client(transport=transport, timeout=10.0) as client:
        answer = HttpxPoster(client).post_answer("http://sink/ingest", content=b"{}", headers={"A": "1", "B": "2"},
                                                 timeout=3.0, extra={"Idempotency-Key": "k", "A": "3"})
    (request,) = transport.requests
    assert answer.status_code == 200 and request.content == b"{}"
    assert [(k, v) for k, v in request.headers.items() if k in ("a", "b", "idempotency-key")] == [
        ("a", "3"), ("b", "2"), ("idempotency-key", "k")]
    assert request.extensions["timeout"] == httpx.Timeout(3.0).as_dict()


def test_a_plain_clients_exporter_posts_through_httpx_and_reads_its_failure() -> None:
    transport = Recording(status=429)
    with httpx.Client(transport=transport) as client:
        failure = post_batch(poster_for(client), "http://sink/ingest", lambda: b"{}", {"A": "1"}, extra={"K": "v"})
        exporter = GzipPostSpanExporter(client, "http://sink/otel", {}, lambda spans: b"x", compress=False)
        exporter.export([object()])  # type: ignore[list-item]
    assert failure is not None and failure.retryable and failure.detail == "HTTP 429: slow down"
    assert [(r.url.path, r.headers.get("K")) for r in transport.requests] == [
        ("/ingest", "v"), ("/otel", None)]
    assert exporter.last_failure is not None and exporter.last_failure.retryable


def test_a_closed_lean_client_refuses_as_httpx_does_and_sends_nothing() -> None:
    async def main() -> int:
        async with ScriptedServer(Play((), close=False)) as server:
            client = ExportClient(trust_env=False)
            client.close()
            with pytest.raises(RuntimeError, match="client has been closed"):
                await asyncio.to_thread(client.post_answer, server.url(own_path("export")), content=b"{}")
            await server.wait_all_closed(DEADLINE)
        return len(server.connections)
    assert asyncio.run(main()) == 0


def test_an_extra_header_httpx_would_replace_in_place_takes_httpx_path() -> None:
    """``Accept`` is one of the client's defaults: httpx replaces its value where it stands, which the
    cached head (extra headers appended at its end) cannot do."""
    async def wire(make: type[httpx.Client], lean: bool) -> bytes:
        async with ScriptedServer(Play((), close=False)) as server:
            url = server.url(own_path("export"))

            def post() -> None:
                with make(timeout=5.0, trust_env=False) as client:
                    if lean:
                        client.post_answer(url, content=b"{}", headers={"A": "1"}, extra={"Accept": "x"})  # type: ignore[attr-defined]
                    else:
                        client.post(url, content=b"{}", headers={"A": "1", "Accept": "x"})

            await asyncio.to_thread(post)
            await server.wait_all_closed(DEADLINE)
        return b"".join(conn.received for conn in server.connections).replace(b"%d" % server.port, b"PORT")

    ours = asyncio.run(wire(ExportClient, lean=True))
    assert ours == asyncio.run(wire(httpx.Client, lean=False))
    assert ours.count(b"ccept: ") == 1
