"""DatadogSpanExporter on the wire: the real datadog-api-client aimed at a loopback sink."""

from __future__ import annotations

import gzip
import json
import socket
import threading

import pytest
from datadog_api_client.exceptions import ApiException
from opentelemetry.sdk.trace.export import SpanExportResult

from contracts import semconv as sc
from contracts.failures import ExportFailure
from exporters.datadog_logs.config import DatadogConfig, OperatorValue
from exporters.datadog_logs.exporter import DatadogSpanExporter, failure_from_exception, new_api_client
from tests.support.readable_spans import CHAT_OK, SPAN_HEX, error_span, span
from tests.support.sinks import HttpSink, Reply, always

KEY = "dd-api-key-team-a-SECRET"


def config_for(url: str, **vars: str) -> DatadogConfig:
    return DatadogConfig.from_vars({"dd_api_key": KEY, "dd_base_url": OperatorValue(url), **vars})


def exporter_for(url: str, **vars: str) -> DatadogSpanExporter:
    config = config_for(url, **vars)
    return DatadogSpanExporter(config, new_api_client(config))


def test_export_posts_gzipped_json_logs_with_the_api_key():
    with HttpSink(always(202)) as sink:
        exporter = exporter_for(sink.url + "/", dd_env="prod")
        assert exporter.export([span({**CHAT_OK, sc.TEAM_ID: "team-a"}), error_span()]) is SpanExportResult.SUCCESS
        exporter.shutdown()
    (request,) = sink.requests
    assert (request.method, request.path) == ("POST", "/api/v2/logs")
    assert request.headers["dd-api-key"] == KEY
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["content-type"] == "application/json"
    assert gzip.decompress(request.raw_body) == request.body
    ok, failed = json.loads(request.body)
    assert (ok["span_id"], ok["status"], ok["ddtags"]) == (SPAN_HEX, "info",
                                                          "env:prod,team:team-a,model:gpt-4o-mini-2024-07-18")
    assert failed["status"] == "error"
    assert failed["message"] == "chat gpt-4o-mini failed: rate_limit_exceeded: rate limited"
    assert exporter.last_failure is None


def test_more_than_1000_spans_go_in_two_requests():
    with HttpSink(always(202)) as sink:
        exporter = exporter_for(sink.url)
        assert exporter.export([span(CHAT_OK, span_id=i + 1) for i in range(1001)]) is SpanExportResult.SUCCESS
        exporter.shutdown()
    assert [len(json.loads(r.body)) for r in sink.requests] == [1000, 1]


def test_a_retried_batch_does_not_resend_the_chunks_datadog_accepted():
    replies = iter([Reply(202), Reply(500), Reply(202), Reply(202), Reply(202)])
    spans = [span(CHAT_OK, span_id=i + 1) for i in range(1001)]
    with HttpSink(lambda _req: next(replies)) as sink:
        exporter = exporter_for(sink.url)
        assert exporter.export(spans) is SpanExportResult.FAILURE
        assert exporter.export(spans) is SpanExportResult.SUCCESS  # the delivery layer's retry
        assert exporter.export(spans) is SpanExportResult.SUCCESS  # remembered only until that retry
        exporter.shutdown()
    sent = [[log["span_id"] for log in json.loads(r.body)] for r in sink.requests]
    assert [len(ids) for ids in sent] == [1000, 1, 1, 1000, 1]
    assert sent[1] == sent[2] == [format(1001, "016x")]


@pytest.mark.parametrize(
    ("reply", "failure"),
    [
        (Reply(500, b"oops"), ExportFailure(retryable=True, detail="HTTP 500: oops", status=500)),
        (Reply(429, b"{}", {"Retry-After": "7"}), ExportFailure(retryable=True, detail="HTTP 429: {}", status=429,
                                                                retry_after=7.0)),
        (Reply(429, b"{}", {"X-RateLimit-Reset": "12"}), ExportFailure(retryable=True, detail="HTTP 429: {}",
                                                                       status=429, retry_after=12.0)),
        (Reply(413, b"{}"), ExportFailure(retryable=False, detail="HTTP 413: {}", status=413, too_large=True)),
        (Reply(403, b'{"errors": ["Forbidden"]}', {"Content-Type": "application/json"}),
         ExportFailure(retryable=False, detail='HTTP 403: {"errors": ["Forbidden"]}', status=403)),
    ],
)
def test_answers_map_to_failures(reply, failure):
    with HttpSink(lambda _req: reply) as sink:
        exporter = exporter_for(sink.url)
        assert exporter.export([span(CHAT_OK)]) is SpanExportResult.FAILURE
        exporter.shutdown()
    assert exporter.last_failure == failure
    assert len(sink.requests) == 1  # the library's own retries are off: the delivery layer retries


def test_connection_refused_is_retryable_and_does_not_show_the_key():
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exporter = exporter_for(f"http://127.0.0.1:{port}")
    assert exporter.export([span(CHAT_OK)]) is SpanExportResult.FAILURE
    failure = exporter.last_failure
    assert failure is not None
    assert (failure.retryable, failure.status, failure.reason) == (True, None, "connection refused")
    assert KEY not in failure.detail


def test_a_connection_closed_without_an_answer_is_retryable():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def hang_up() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        exporter = exporter_for(f"http://127.0.0.1:{server.getsockname()[1]}")
        assert exporter.export([span(CHAT_OK)]) is SpanExportResult.FAILURE
        thread.join(5)
    failure = exporter.last_failure
    assert failure is not None
    assert (failure.retryable, failure.reason) == (True, "connection lost")
    assert failure.detail.startswith("ProtocolError:")


def test_a_slow_answer_times_out_and_is_retryable():
    with HttpSink(lambda _req: Reply(202, delay=2.0)) as sink:
        exporter = exporter_for(sink.url)
        exporter._client.configuration.request_timeout = (1.0, 0.2)
        assert exporter.export([span(CHAT_OK)]) is SpanExportResult.FAILURE
        exporter.shutdown()
    failure = exporter.last_failure
    assert failure is not None and (failure.retryable, failure.reason) == (True, "timed out")


def test_a_redirect_is_not_followed_so_the_key_stays_where_it_was_sent():
    with HttpSink(always(202)) as elsewhere:
        moved = Reply(307, b"", {"Location": elsewhere.url + "/api/v2/logs"})
        with HttpSink(lambda _req: moved) as sink:
            exporter = exporter_for(sink.url)
            assert exporter.export([span(CHAT_OK)]) is SpanExportResult.FAILURE
            exporter.shutdown()
    assert elsewhere.requests == []
    assert exporter.last_failure is not None
    assert (exporter.last_failure.status, exporter.last_failure.retryable) == (307, False)


def test_a_teams_site_and_key_win_over_the_process_environment(monkeypatch):
    # datadog-api-client reads DD_SITE, DD_API_KEY and DD_APP_KEY from os.environ in Configuration().
    monkeypatch.setenv("DD_SITE", "datadoghq.eu")
    monkeypatch.setenv("DD_API_KEY", "operator-key")
    monkeypatch.setenv("DD_APP_KEY", "operator-app-key")
    config = DatadogConfig.from_vars({"dd_api_key": KEY, "dd_site": "us5.datadoghq.com"})
    with new_api_client(config) as client:
        assert client.configuration.api_key == {"apiKeyAuth": KEY}
        assert (client.configuration.server_index, client.configuration.server_variables) == (
            0, {"site": "us5.datadoghq.com"})


def test_a_span_that_cannot_be_encoded_fails_the_batch_without_raising():
    with HttpSink(always(202)) as sink:
        exporter = exporter_for(sink.url)
        assert exporter.export([object()]) is SpanExportResult.FAILURE  # type: ignore[list-item]
        exporter.shutdown()
    assert sink.requests == []
    assert exporter.last_failure is not None and not exporter.last_failure.retryable


def test_shutdown_refuses_later_exports():
    with HttpSink(always(202)) as sink:
        exporter = exporter_for(sink.url)
        exporter.shutdown()
        exporter.shutdown()
        assert exporter.export([span(CHAT_OK)]) is SpanExportResult.FAILURE
    assert sink.requests == []
    assert exporter.last_failure == ExportFailure(retryable=False, detail="exporter is shut down")
    assert exporter.force_flush() is True


def test_other_client_errors_are_retryable():
    tls = failure_from_exception(ApiException(status=0, reason="SSLError\ncertificate verify failed"))
    assert (tls.retryable, tls.reason) == (True, "TLS failed")
    unknown = failure_from_exception(RuntimeError("boom"))
    assert (unknown.retryable, unknown.detail) == (True, "RuntimeError: boom")


def test_repr_shows_where_logs_go_not_the_key():
    exporter = exporter_for("http://127.0.0.1:9")
    assert repr(exporter) == "DatadogSpanExporter(url='http://127.0.0.1:9')"
    exporter.shutdown()
