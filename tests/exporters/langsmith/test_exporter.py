"""LangSmithSpanExporter on the wire: a loopback sink decodes what it sent and scripts failures."""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

from contracts.failures import ExportFailure
from exporters.langsmith.config import LangSmithConfig
from exporters.langsmith.exporter import LangSmithSpanExporter
from tests.exporters.langfuse.test_encode import CHAT, SPAN_HEX, gateway_span
from tests.support.otlp import OtlpSink
from tests.support.sinks import Reply, always

KEY = "lsv2_pt_team3_SECRET"


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def exporter_for(url: str, client: httpx.Client, **vars: str) -> LangSmithSpanExporter:
    config = LangSmithConfig.from_vars({"langsmith_api_key": KEY, "langsmith_base_url": url, **vars})
    return LangSmithSpanExporter(config, client)


def test_export_posts_gzipped_otlp_with_the_key_and_project_headers(client):
    with OtlpSink() as sink:
        exporter = exporter_for(sink.url, client, langsmith_project="team-3", langsmith_tenant_id="ws-9")
        assert exporter.export([gateway_span(CHAT, metadata={"generation_name": "g1"})]) is SpanExportResult.SUCCESS
    (request,) = sink.requests
    assert (request.method, request.path) == ("POST", "/otel/v1/traces")
    assert request.headers["x-api-key"] == KEY
    assert request.headers["langsmith-project"] == "team-3"
    assert request.headers["x-tenant-id"] == "ws-9"
    assert request.headers["content-type"] == "application/x-protobuf"
    assert request.headers["content-encoding"] == "gzip"
    assert gzip.decompress(request.raw_body) == request.body
    (decoded,) = sink.spans()
    assert (decoded["span_id"], decoded["name"]) == (SPAN_HEX, "g1")
    assert decoded["attributes"]["langsmith.span.kind"] == "llm"
    assert exporter.last_failure is None


def test_without_a_project_no_project_header_is_sent(client):
    with OtlpSink() as sink:
        assert exporter_for(sink.url + "/api/v1", client).export([gateway_span(CHAT)]) is SpanExportResult.SUCCESS
    (request,) = sink.requests
    assert request.path == "/api/v1/otel/v1/traces"
    assert "langsmith-project" not in request.headers and "x-tenant-id" not in request.headers


@pytest.mark.parametrize(("reply", "failure"), [
    (Reply(status=500, body=b"oops"), ExportFailure(retryable=True, detail="HTTP 500: oops", status=500)),
    (Reply(status=429, body=b"slow", headers={"Retry-After": "7"}),
     ExportFailure(retryable=True, detail="HTTP 429: slow", status=429, retry_after=7.0)),
    (Reply(status=413, body=b"big"), ExportFailure(retryable=False, detail="HTTP 413: big", status=413,
                                                   too_large=True)),
    (Reply(status=401, body=b'{"detail":"Invalid token"}'),
     ExportFailure(retryable=False, detail='HTTP 401: {"detail":"Invalid token"}', status=401)),
])
def test_answers_map_onto_the_failure_contract(client, reply, failure):
    with OtlpSink(lambda _req: reply) as sink:
        exporter = exporter_for(sink.url, client)
        assert exporter.export([gateway_span(CHAT)]) is SpanExportResult.FAILURE
    assert exporter.last_failure == failure


def test_success_after_failure_clears_last_failure(client):
    with OtlpSink(always(503)) as sink:
        exporter = exporter_for(sink.url, client)
        assert exporter.export([gateway_span(CHAT)]) is SpanExportResult.FAILURE
        sink.respond = always(200)
        assert exporter.export([gateway_span(CHAT)]) is SpanExportResult.SUCCESS
    assert exporter.last_failure is None


def test_connection_refused_is_retryable_and_does_not_quote_the_key(client):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exporter = exporter_for(f"http://127.0.0.1:{port}", client)
    assert exporter.export([gateway_span(CHAT)]) is SpanExportResult.FAILURE
    failure = exporter.last_failure
    assert failure is not None and (failure.retryable, failure.reason) == (True, "connection refused")
    assert KEY not in failure.detail


def test_unencodable_batch_is_permanent_and_sends_nothing(client):
    with OtlpSink() as sink:
        exporter = exporter_for(sink.url, client)
        assert exporter.export([object()]) is SpanExportResult.FAILURE  # type: ignore[list-item]
        assert exporter.export([]) is SpanExportResult.SUCCESS
    assert sink.requests == []


def test_shutdown_refuses_later_exports_and_leaves_the_shared_client_open(client):
    exporter = exporter_for("https://api.smith.langchain.com", client)
    exporter.shutdown()
    assert exporter.export([gateway_span(CHAT)]) is SpanExportResult.FAILURE
    assert exporter.last_failure == ExportFailure(retryable=False, detail="exporter is shut down")
    assert not client.is_closed
    assert repr(exporter) == "LangSmithSpanExporter(url='https://api.smith.langchain.com/otel/v1/traces')"
