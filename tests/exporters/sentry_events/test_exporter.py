"""SentrySpanExporter on the wire: real sentry-sdk events and envelopes, a loopback project, scripted failures."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import httpx
import pytest
import sentry_sdk
from opentelemetry.sdk.trace.export import SpanExportResult

from contracts.failures import ExportFailure
from exporters.sentry_events.config import SentryConfig
from exporters.sentry_events.exporter import SentrySpanExporter
from tests.support.readable_spans import CHAT_OK, SPAN_HEX, TRACE_HEX, error_span, span
from tests.support.sentry import ENVELOPE_PATH, SentryProject, assert_envelope_request, parse_envelope
from tests.support.sinks import Reply, always
from tests.support.upstream import closed_port

RELEASE = "spangate@test"


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        yield client


def exporter_for(dsn: str, client: httpx.Client) -> SentrySpanExporter:
    return SentrySpanExporter(SentryConfig.from_vars({"sentry_dsn": dsn, "sentry_environment": "ci"}), client,
                              release=RELEASE)


def export_once(project: SentryProject, client: httpx.Client, spans=None) -> SentrySpanExporter:
    exporter = exporter_for(project.dsn, client)
    exporter.export(spans if spans is not None else [error_span()])
    return exporter


def test_a_failed_call_is_one_gzipped_envelope_with_sentry_auth(client):
    with SentryProject(public_key="pubkey1") as project:
        exporter = exporter_for(project.dsn, client)
        assert exporter.export([span(CHAT_OK), error_span()]) is SpanExportResult.SUCCESS
    (request,) = project.requests
    assert_envelope_request(request, "pubkey1")
    assert request.headers["x-sentry-auth"] == f"Sentry sentry_key=pubkey1, sentry_version=7, " \
                                               f"sentry_client=sentry.python/{sentry_sdk.VERSION}"
    assert gzip.decompress(request.raw_body) == request.body
    envelope = parse_envelope(request.body)
    assert envelope.headers["event_id"] == SPAN_HEX + TRACE_HEX[16:]
    ((item_header, event),) = envelope.items
    assert item_header["type"] == "event"
    assert (event["release"], event["environment"], event["level"]) == (RELEASE, "ci", "error")
    assert event["exception"]["values"][0]["type"] == "rate_limit_exceeded"
    assert event["contexts"]["trace"]["trace_id"] == TRACE_HEX
    assert event["sdk"]["integrations"] == []
    assert exporter.last_failure is None
    assert not sentry_sdk.get_client().is_active()  # nothing process-wide was initialised


def test_only_successes_send_nothing(client):
    with SentryProject() as project:
        exporter = export_once(project, client, [span(CHAT_OK)])
    assert project.requests == [] and exporter.last_failure is None


def test_each_failed_span_is_its_own_envelope(client):
    spans = [error_span(), span(error_span().attributes, status=error_span().status, span_id=7)]
    with SentryProject() as project:
        export_once(project, client, spans)
    assert [e["contexts"]["trace"]["span_id"] for e in project.events()] == [SPAN_HEX, f"{7:016x}"]
    assert [r.path for r in project.requests] == [ENVELOPE_PATH] * 2


def test_a_dsn_path_prefix_is_kept(client):
    with SentryProject() as project:
        dsn = project.dsn.replace(f"/{1}", "/sentry/1")
        exporter_for(dsn, client).export([error_span()])
    assert [r.path for r in project.requests] == ["/sentry" + ENVELOPE_PATH]


@pytest.mark.parametrize(
    ("reply", "failure"),
    [
        (Reply(500, b"oops"), ExportFailure(retryable=True, detail="HTTP 500: oops", status=500)),
        (Reply(429, b"", {"Retry-After": "7"}),
         ExportFailure(retryable=True, detail="HTTP 429:", status=429, retry_after=7.0)),
        (Reply(429, b"", {"Retry-After": "7", "X-Sentry-Rate-Limits": "30:transaction:key, 90:error;default:org"}),
         ExportFailure(retryable=True, detail="HTTP 429:", status=429, retry_after=90.0)),
        (Reply(429, b"", {"X-Sentry-Rate-Limits": "45::organization"}),
         ExportFailure(retryable=True, detail="HTTP 429:", status=429, retry_after=45.0)),
        (Reply(429, b""), ExportFailure(retryable=True, detail="HTTP 429:", status=429, retry_after=60.0)),
        (Reply(413, b"too big"), ExportFailure(retryable=False, detail="HTTP 413: too big", status=413,
                                               too_large=True)),
        (Reply(401, b'{"detail":"bad key"}'), ExportFailure(retryable=False, detail='HTTP 401: {"detail":"bad key"}',
                                                             status=401)),
    ],
)
def test_answers_map_to_failures(client, reply, failure):
    with SentryProject(lambda _req: reply) as project:
        exporter = export_once(project, client)
    assert exporter.last_failure == failure
    assert len(project.requests) == 1


def test_a_refused_connection_is_retryable(client):
    exporter = exporter_for(f"http://public@127.0.0.1:{closed_port()}/1", client)
    assert exporter.export([error_span()]) is SpanExportResult.FAILURE
    assert exporter.last_failure.retryable and exporter.last_failure.reason == "connection refused"


def test_a_failure_stops_the_batch_so_the_retry_resends_it(client):
    answers = iter([Reply(200), Reply(503, b"busy")])
    with SentryProject(lambda _req: next(answers)) as project:
        exporter = exporter_for(project.dsn, client)
        result = exporter.export([error_span(), span(error_span().attributes, status=error_span().status, span_id=7),
                                  span(error_span().attributes, status=error_span().status, span_id=8)])
    assert result is SpanExportResult.FAILURE and exporter.last_failure.status == 503
    assert len(project.requests) == 2


def test_after_shutdown_exports_fail_permanently(client):
    with SentryProject(always()) as project:
        exporter = exporter_for(project.dsn, client)
        exporter.shutdown()
        assert exporter.export([error_span()]) is SpanExportResult.FAILURE
    assert project.requests == [] and not exporter.last_failure.retryable
    assert "public@" not in repr(exporter)
