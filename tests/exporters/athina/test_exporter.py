"""AthinaSpanExporter on the wire against a loopback sink."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

from contracts.failures import ExportFailure
from exporters.athina.config import AthinaConfig
from exporters.athina.exporter import AthinaSpanExporter
from tests.exporters.generic.test_encode import CHAT
from tests.support.readable_spans import span
from tests.support.sinks import HttpSink, Reply

SPANS = [span(CHAT, span_id=n) for n in (1, 2)]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        yield client


def exporter_for(url: str, client: httpx.Client) -> AthinaSpanExporter:
    return AthinaSpanExporter(AthinaConfig("ak-SECRET", url), client)


def test_one_inference_per_call_with_the_api_key_header(client):
    with HttpSink() as sink:
        exporter = exporter_for(sink.url, client)
        assert exporter.export(SPANS) is SpanExportResult.SUCCESS
    assert [(r.method, r.path) for r in sink.requests] == [("POST", "/api/v1/log/inference")] * 2
    for n, request in enumerate(sink.requests, start=1):
        assert request.headers["athina-api-key"] == "ak-SECRET"
        assert request.headers["content-type"] == "application/json"
        assert "authorization" not in request.headers
        body = json.loads(request.body)
        assert (body["language_model_id"], body["external_reference_id"]) == ("gpt-3.5-turbo", f"{n:016x}")
    assert exporter.last_failure is None


def test_retry_skips_what_athina_accepted(client):
    answers = iter([Reply(200), Reply(429, b"", {"Retry-After": "2"}), Reply(200)])
    with HttpSink(lambda _req: next(answers)) as sink:
        exporter = exporter_for(sink.url, client)
        assert exporter.export(SPANS) is SpanExportResult.FAILURE
        assert exporter.last_failure == ExportFailure(retryable=True, detail="HTTP 429:", status=429, retry_after=2.0)
        assert exporter.export(SPANS) is SpanExportResult.SUCCESS
    assert [json.loads(r.body)["external_reference_id"] for r in sink.requests] == [
        "0000000000000001", "0000000000000002", "0000000000000002"]


@pytest.mark.parametrize(("status", "retryable", "too_large"), [(500, True, False), (413, False, True),
                                                                (401, False, False)])
def test_statuses_map_onto_export_failures(client, status, retryable, too_large):
    with HttpSink(lambda _req: Reply(status, b"x")) as sink:
        exporter = exporter_for(sink.url, client)
        assert exporter.export(SPANS) is SpanExportResult.FAILURE
    assert exporter.last_failure == ExportFailure(retryable=retryable, detail=f"HTTP {status}: x", status=status,
                                                  too_large=too_large)
    assert len(sink.requests) == 1  # it stops at the first failure


def test_connection_refused_is_retryable(client):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exporter = exporter_for(f"http://127.0.0.1:{port}", client)
    assert exporter.export(SPANS) is SpanExportResult.FAILURE
    assert exporter.last_failure is not None and exporter.last_failure.retryable
    assert "SECRET" not in exporter.last_failure.detail and "SECRET" not in repr(exporter)


def test_shutdown_refuses_later_exports(client):
    exporter = exporter_for("http://127.0.0.1:9", client)
    exporter.shutdown()
    assert exporter.export(SPANS) is SpanExportResult.FAILURE
    assert exporter.last_failure == ExportFailure(retryable=False, detail="exporter is shut down")
    assert not client.is_closed and exporter.force_flush()
