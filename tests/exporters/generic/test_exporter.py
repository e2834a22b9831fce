"""GenericSpanExporter on the wire: a loopback sink checks path, headers and body, and scripts failures."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

from contracts.failures import ExportFailure
from exporters.generic.config import GenericConfig, LogFormat
from exporters.generic.exporter import GenericSpanExporter
from tests.exporters.generic.test_encode import CHAT
from tests.support.readable_spans import span
from tests.support.sinks import HttpSink, Received, Reply, always

HEADERS = {"Authorization": "Bearer hook-SECRET", "X-Source": "spangate"}
SPANS = [span(CHAT, span_id=n) for n in (1, 2, 3)]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        yield client


def exporter_for(url: str, client: httpx.Client, fmt: LogFormat = LogFormat.SINGLE) -> GenericSpanExporter:
    return GenericSpanExporter(GenericConfig(url + "/log-event", HEADERS, fmt), client)


def span_ids(request: Received) -> list[str]:
    return [json.loads(line)["data"]["span_id"] for line in request.body.splitlines()]


def test_single_posts_one_seed_body_per_call_with_its_idempotency_key(client):
    with HttpSink() as sink:
        exporter = exporter_for(sink.url, client)
        assert exporter.export(SPANS) is SpanExportResult.SUCCESS
    assert [(r.method, r.path) for r in sink.requests] == [("POST", "/log-event")] * 3
    for n, request in enumerate(sink.requests, start=1):
        assert request.headers["authorization"] == "Bearer hook-SECRET"
        assert request.headers["x-source"] == "spangate"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["idempotency-key"] == f"{n:016x}"
        assert "content-encoding" not in request.headers
        assert set(json.loads(request.body)) == {"data"}
    assert [span_ids(r) for r in sink.requests] == [[f"{n:016x}"] for n in (1, 2, 3)]
    assert exporter.last_failure is None


def test_json_array_and_ndjson_send_the_batch_in_one_request(client):
    with HttpSink() as sink:
        assert exporter_for(sink.url, client, LogFormat.JSON_ARRAY).export(SPANS) is SpanExportResult.SUCCESS
        assert exporter_for(sink.url, client, LogFormat.NDJSON).export(SPANS) is SpanExportResult.SUCCESS
    array, ndjson = sink.requests
    assert array.headers["content-type"] == "application/json"
    assert [r["data"]["span_id"] for r in json.loads(array.body)] == [f"{n:016x}" for n in (1, 2, 3)]
    assert ndjson.headers["content-type"] == "application/x-ndjson"
    assert span_ids(ndjson) == [f"{n:016x}" for n in (1, 2, 3)]
    assert "idempotency-key" not in array.headers


def test_a_retry_after_a_failure_mid_batch_does_not_resend_accepted_calls(client):
    answers = iter([Reply(200), Reply(503, b"busy", {"Retry-After": "3"}), Reply(200), Reply(200)])
    with HttpSink(lambda _req: next(answers)) as sink:
        exporter = exporter_for(sink.url, client)
        assert exporter.export(SPANS) is SpanExportResult.FAILURE
        assert exporter.last_failure == ExportFailure(retryable=True, detail="HTTP 503: busy", status=503,
                                                      retry_after=3.0)
        assert exporter.export(SPANS) is SpanExportResult.SUCCESS
    assert [r.headers["idempotency-key"] for r in sink.requests] == [f"{n:016x}" for n in (1, 2, 2, 3)]


@pytest.mark.parametrize(("reply", "expected"), [
    (Reply(500, b"oops"), ExportFailure(retryable=True, detail="HTTP 500: oops", status=500)),
    (Reply(429, b"slow", {"Retry-After": "7"}),
     ExportFailure(retryable=True, detail="HTTP 429: slow", status=429, retry_after=7.0)),
    (Reply(413, b""), ExportFailure(retryable=False, detail="HTTP 413:", status=413, too_large=True)),
    (Reply(401, b"no"), ExportFailure(retryable=False, detail="HTTP 401: no", status=401)),
])
def test_failures_map_to_what_the_delivery_layer_does(client, reply, expected):
    with HttpSink(lambda _req: reply) as sink:
        exporter = exporter_for(sink.url, client, LogFormat.JSON_ARRAY)
        assert exporter.export(SPANS) is SpanExportResult.FAILURE
    assert exporter.last_failure == expected


def test_permanent_failure_forgets_the_batch(client):
    answers = iter([Reply(200), Reply(400), Reply(200), Reply(200), Reply(200)])
    with HttpSink(lambda _req: next(answers)) as sink:
        exporter = exporter_for(sink.url, client)
        assert exporter.export(SPANS) is SpanExportResult.FAILURE
        assert exporter.last_failure is not None and not exporter.last_failure.retryable
        assert exporter.export(SPANS) is SpanExportResult.SUCCESS  # a new batch of the same spans: all sent
    assert len(sink.requests) == 5


def test_connection_refused_is_retryable_and_does_not_echo_headers(client):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exporter = exporter_for(f"http://127.0.0.1:{port}", client)
    assert exporter.export(SPANS) is SpanExportResult.FAILURE
    failure = exporter.last_failure
    assert failure is not None and (failure.retryable, failure.reason) == (True, "connection refused")
    assert "SECRET" not in failure.detail


def test_unencodable_span_is_permanent_and_sends_nothing(client):
    with HttpSink(always()) as sink:
        for fmt in LogFormat:
            exporter = exporter_for(sink.url, client, fmt)
            assert exporter.export([object()]) is SpanExportResult.FAILURE  # type: ignore[list-item]
            assert exporter.last_failure is not None and not exporter.last_failure.retryable
    assert sink.requests == []


def test_shutdown_refuses_later_exports_and_leaves_the_shared_client_open(client):
    with HttpSink() as sink:
        exporter = exporter_for(sink.url, client)
        exporter.shutdown()
        assert exporter.export(SPANS) is SpanExportResult.FAILURE
        assert exporter.export([]) is SpanExportResult.FAILURE
    assert sink.requests == [] and not client.is_closed
    assert exporter.force_flush() is True
    assert "SECRET" not in repr(exporter)
