"""OpenMeterSpanExporter on the wire: a loopback OpenMeter stand-in checks what it sent and scripts failures."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from contracts import semconv as sc
from contracts.failures import ExportFailure
from exporters.openmeter.config import OpenMeterConfig
from exporters.openmeter.exporter import OpenMeterSpanExporter
from tests.support.openmeter import OpenMeterSink, cloudevents
from tests.support.readable_spans import CHAT_OK, SPAN_HEX, error_span, span
from tests.support.sinks import Reply, always

KEY = "om_test_SECRET_0123"


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        yield client


def exporter_for(url: str, client: httpx.Client, key: str = KEY, event_type: str = "tokens") -> OpenMeterSpanExporter:
    return OpenMeterSpanExporter(OpenMeterConfig(key, url, event_type), client)


def chat(span_id: int = 0x00F067AA0BA902B7, **attributes: object) -> ReadableSpan:
    return span({**CHAT_OK, sc.TEAM_ID: "team-a", sc.KEY_HASH: "9f86d081884c7d65", **attributes}, span_id=span_id)


def test_export_posts_one_cloudevents_batch_with_the_bearer_key(client):
    with OpenMeterSink() as sink:
        exporter = exporter_for(sink.url, client, key=sink.api_key)
        assert exporter.export([chat(), chat(span_id=2, **{sc.END_USER: "cust-9"})]) is SpanExportResult.SUCCESS
    sink.assert_wire_format()
    (request,) = sink.requests
    assert cloudevents(request) == [
        {"specversion": "1.0", "id": SPAN_HEX, "source": "spangate", "type": "tokens", "subject": "team-a",
         "time": "2026-01-01T00:00:01.250000Z",
         "data": {"model": "gpt-4o-mini", "prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42,
                  "cost": 0.0000198}},
        {"specversion": "1.0", "id": "0000000000000002", "source": "spangate", "type": "tokens",
         "subject": "cust-9", "time": "2026-01-01T00:00:01.250000Z",
         "data": {"model": "gpt-4o-mini", "prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42,
                  "cost": 0.0000198}},
    ]
    assert b"9f86d081884c7d65" not in request.body
    assert exporter.last_failure is None


def test_endpoint_path_prefix_is_kept(client):
    with OpenMeterSink() as sink:
        assert exporter_for(sink.url + "/om/", client).export([chat()]) is SpanExportResult.SUCCESS
    assert [r.path for r in sink.requests] == ["/om/api/v1/events"]


def test_batch_of_failed_calls_sends_nothing_and_succeeds(client):
    with OpenMeterSink(always(500)) as sink:
        exporter = exporter_for(sink.url, client)
        assert exporter.export([error_span(), error_span()]) is SpanExportResult.SUCCESS
        assert exporter.export([]) is SpanExportResult.SUCCESS
    assert sink.requests == []
    assert exporter.last_failure is None


def test_only_calls_with_usage_become_events(client):
    with OpenMeterSink() as sink:
        assert exporter_for(sink.url, client).export([error_span(), chat(span_id=5)]) is SpanExportResult.SUCCESS
    assert [e["id"] for e in sink.events()] == ["0000000000000005"]


@pytest.mark.parametrize(("reply", "failure"), [
    (Reply(status=500, body=b"oops"), ExportFailure(retryable=True, detail="HTTP 500: oops", status=500)),
    (Reply(status=429, body=b"slow down", headers={"Retry-After": "3"}),
     ExportFailure(retryable=True, detail="HTTP 429: slow down", status=429, retry_after=3.0)),
    (Reply(status=413, body=b"too big"),
     ExportFailure(retryable=False, detail="HTTP 413: too big", status=413, too_large=True)),
    (Reply(status=400, body=b'{"title":"invalid event"}'),
     ExportFailure(retryable=False, detail='HTTP 400: {"title":"invalid event"}', status=400)),
    (Reply(status=401, body=b"unauthorized"), ExportFailure(retryable=False, detail="HTTP 401: unauthorized",
                                                            status=401)),
])
def test_answers_map_to_the_delivery_layers_failures(client, reply, failure):
    with OpenMeterSink(lambda _req: reply) as sink:
        exporter = exporter_for(sink.url, client)
        assert exporter.export([chat()]) is SpanExportResult.FAILURE
    assert exporter.last_failure == failure
    assert len(sink.requests) == 1


def test_a_resent_batch_carries_the_same_ids_so_openmeter_keeps_one_event_per_call(client):
    replies = iter([Reply(status=503), Reply(status=204, body=b"", headers={})])
    with OpenMeterSink(lambda _req: next(replies)) as sink:
        exporter = exporter_for(sink.url, client)
        batch = [chat(span_id=1), chat(span_id=2)]
        assert exporter.export(batch) is SpanExportResult.FAILURE
        assert exporter.last_failure is not None and exporter.last_failure.retryable
        assert exporter.export(batch) is SpanExportResult.SUCCESS
    assert [e["id"] for e in sink.events()] == ["0000000000000001", "0000000000000002"] * 2
    assert sorted(i for _source, i in sink.stored()) == ["0000000000000001", "0000000000000002"]
    assert exporter.last_failure is None


def test_connection_refused_is_retryable_and_does_not_show_the_key(client):
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exporter = exporter_for(f"http://127.0.0.1:{port}", client)
    assert exporter.export([chat()]) is SpanExportResult.FAILURE
    failure = exporter.last_failure
    assert failure is not None
    assert (failure.retryable, failure.status, failure.reason) == (True, None, "connection refused")
    assert KEY not in failure.detail


def test_timeout_is_retryable():
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with httpx.Client(transport=httpx.MockTransport(slow)) as client:
        exporter = exporter_for("https://openmeter.cloud", client)
        assert exporter.export([chat()]) is SpanExportResult.FAILURE
    assert exporter.last_failure == ExportFailure(retryable=True, detail="ReadTimeout: timed out")


def test_a_span_that_cannot_be_encoded_fails_the_batch_permanently_without_raising(client):
    with OpenMeterSink() as sink:
        exporter = exporter_for(sink.url, client)
        assert exporter.export([chat(), object()]) is SpanExportResult.FAILURE  # type: ignore[list-item]
    assert sink.requests == []
    assert exporter.last_failure is not None and not exporter.last_failure.retryable


def test_shutdown_refuses_later_exports_and_leaves_the_shared_client_open(client):
    with OpenMeterSink() as sink:
        exporter = exporter_for(sink.url, client)
        exporter.shutdown()
        assert exporter.export([chat()]) is SpanExportResult.FAILURE
    assert sink.requests == []
    assert exporter.last_failure == ExportFailure(retryable=False, detail="exporter is shut down")
    assert not client.is_closed
    assert exporter.force_flush() is True


def test_repr_does_not_show_the_key(client):
    exporter = exporter_for("https://openmeter.cloud", client)
    assert repr(exporter) == "OpenMeterSpanExporter(url='https://openmeter.cloud/api/v1/events', event_type='tokens')"
