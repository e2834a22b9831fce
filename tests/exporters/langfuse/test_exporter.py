"""LangfuseSpanExporter on the wire: a loopback sink decodes what it sent and scripts failures."""

from __future__ import annotations

import base64
import gzip
import socket
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

from contracts import semconv as sc
from contracts.failures import ExportFailure
from exporters.langfuse.config import LangfuseConfig
from exporters.langfuse.exporter import LangfuseSpanExporter
from tests.exporters.langfuse.test_encode import CHAT, SPAN_HEX, gateway_span
from tests.support.otlp import OtlpSink
from tests.support.sinks import Reply, always

PUBLIC, SECRET = "pk-lf-team-a", "sk-lf-team-a-SECRET"
BASIC = "Basic " + base64.b64encode(f"{PUBLIC}:{SECRET}".encode()).decode()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def exporter_for(url: str, client: httpx.Client) -> LangfuseSpanExporter:
    return LangfuseSpanExporter(LangfuseConfig(PUBLIC, SECRET, host=url), client)


def test_export_posts_gzipped_otlp_with_langfuse_auth_and_headers(client):
    span = gateway_span(CHAT, metadata={"generation_name": "g1", "trace_user_id": "u1"})
    with OtlpSink() as sink:
        exporter = exporter_for(sink.url, client)
        assert exporter.export([span]) is SpanExportResult.SUCCESS
    (request,) = sink.requests
    assert (request.method, request.path) == ("POST", "/api/public/otel/v1/traces")
    assert request.headers["authorization"] == BASIC
    assert request.headers["content-type"] == "application/x-protobuf"
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["x-langfuse-ingestion-version"] == "4"
    assert gzip.decompress(request.raw_body) == request.body
    (decoded,) = sink.spans()
    assert (decoded["span_id"], decoded["name"]) == (SPAN_HEX, "g1")
    attributes = decoded["attributes"]
    assert attributes["user.id"] == "u1"
    assert attributes["langfuse.trace.name"] == "g1"
    assert attributes[sc.REQUEST_MODEL] == "gpt-4o"
    assert sc.KEY_HASH not in attributes
    assert exporter.last_failure is None


def test_host_path_prefix_is_kept(client):
    with OtlpSink() as sink:
        exporter = exporter_for(sink.url + "/langfuse/", client)
        assert exporter.export([gateway_span(CHAT)]) is SpanExportResult.SUCCESS
    assert [r.path for r in sink.requests] == ["/langfuse/api/public/otel/v1/traces"]


def test_401_is_a_failure_that_retrying_cannot_fix(client):
    with OtlpSink(always(401, b'{"message":"Invalid credentials"}')) as sink:
        exporter = exporter_for(sink.url, client)
        assert exporter.export([gateway_span(CHAT)]) is SpanExportResult.FAILURE
    assert exporter.last_failure == ExportFailure(
        retryable=False, detail='HTTP 401: {"message":"Invalid credentials"}', status=401
    )


def test_503_is_retryable_after_the_servers_delay(client):
    busy = Reply(status=503, body=b"busy", headers={"Retry-After": "7"})
    with OtlpSink(lambda _req: busy) as sink:
        exporter = exporter_for(sink.url, client)
        assert exporter.export([gateway_span(CHAT)]) is SpanExportResult.FAILURE
    assert exporter.last_failure == ExportFailure(
        retryable=True, detail="HTTP 503: busy", status=503, retry_after=7.0
    )


def test_success_after_failure_clears_last_failure(client):
    replies = iter([Reply(status=500), Reply(status=200)])
    with OtlpSink(lambda _req: next(replies)) as sink:
        exporter = exporter_for(sink.url, client)
        assert exporter.export([gateway_span(CHAT)]) is SpanExportResult.FAILURE
        assert exporter.last_failure is not None and exporter.last_failure.retryable
        assert exporter.export([gateway_span(CHAT)]) is SpanExportResult.SUCCESS
    assert exporter.last_failure is None


def test_connection_refused_is_retryable(client):
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exporter = exporter_for(f"http://127.0.0.1:{port}", client)
    assert exporter.export([gateway_span(CHAT)]) is SpanExportResult.FAILURE
    failure = exporter.last_failure
    assert failure is not None
    assert (failure.retryable, failure.status, failure.detail.split(":")[0]) == (True, None, "ConnectError")
    assert SECRET not in failure.detail


def test_timeout_is_retryable():
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with httpx.Client(transport=httpx.MockTransport(slow)) as client:
        exporter = exporter_for("https://cloud.langfuse.com", client)
        assert exporter.export([gateway_span(CHAT)]) is SpanExportResult.FAILURE
    assert exporter.last_failure == ExportFailure(retryable=True, detail="ReadTimeout: timed out")


def test_a_span_that_cannot_be_encoded_fails_the_batch_without_raising(client):
    with OtlpSink() as sink:
        exporter = exporter_for(sink.url, client)
        assert exporter.export([object()]) is SpanExportResult.FAILURE  # type: ignore[list-item]
    assert sink.requests == []
    assert exporter.last_failure is not None and not exporter.last_failure.retryable


def test_empty_batch_sends_nothing(client):
    with OtlpSink() as sink:
        assert exporter_for(sink.url, client).export([]) is SpanExportResult.SUCCESS
    assert sink.requests == []


def test_shutdown_leaves_an_injected_client_open_and_refuses_later_exports(client):
    with OtlpSink() as sink:
        exporter = exporter_for(sink.url, client)
        exporter.shutdown()
        assert exporter.export([gateway_span(CHAT)]) is SpanExportResult.FAILURE
    assert sink.requests == []
    assert exporter.last_failure == ExportFailure(retryable=False, detail="exporter is shut down")
    assert not client.is_closed
    assert exporter.force_flush() is True


def test_shutdown_closes_an_owned_client():
    client = httpx.Client()
    exporter = LangfuseSpanExporter(LangfuseConfig(PUBLIC, SECRET), client, owns_client=True)
    exporter.shutdown()
    assert client.is_closed


def test_repr_does_not_show_credentials(client):
    exporter = exporter_for("https://cloud.langfuse.com", client)
    assert repr(exporter) == "LangfuseSpanExporter(url='https://cloud.langfuse.com/api/public/otel/v1/traces')"
