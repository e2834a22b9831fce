"""``otel``: OTLP/HTTP protobuf to a loopback sink, decoded; failures are typed, never raised."""

import gzip
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace.export import SpanExportResult

from contracts import semconv as sc
from exporters.otlp import (
    DESTINATIONS,
    OtlpConfig,
    OtlpHttpSpanExporter,
    build_otlp_exporter,
    parse_headers,
    traceloop_config,
)
from exporters.plugin import BuildContext, GlobalInputs
from tests.support.otlp import OtlpSink
from tests.support.readable_spans import CHAT_OK, END, PARENT_HEX, SPAN_HEX, START, TRACE_HEX, error_span, span
from tests.support.sinks import Reply, always
from tests.support.upstream import closed_port


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0, trust_env=False) as http:
        yield http


def test_config_from_endpoint_adds_the_traces_path_and_parses_headers() -> None:
    config = OtlpConfig.from_vars({"endpoint": "http://collector:4318/", "headers": "Authorization=Basic%20abc,x-k=v"})
    assert config == OtlpConfig("http://collector:4318/v1/traces", "http/protobuf",
                                {"authorization": "Basic abc", "x-k": "v"})
    assert OtlpConfig.from_vars({"traces_endpoint": "https://x/otlp", "endpoint": "http://ignored"}).traces_endpoint \
        == "https://x/otlp"
    assert OtlpConfig.from_vars({"endpoint": "http://c:4317", "protocol": "grpc"}).traces_endpoint == "http://c:4317"


@pytest.mark.parametrize(("values", "message"), [
    ({}, "missing var 'endpoint' for otel"),
    ({"endpoint": "collector:4318"}, "var 'endpoint' must be an http(s) URL"),
    ({"endpoint": "http://c", "protocol": "http/json"}, "var 'protocol' must be one of http/protobuf, grpc"),
    ({"endpoint": "http://c", "token": "x"}, "unknown var 'token' for otel"),
    ({"endpoint": "http://c", "headers": "novalue"}, "headers must look like 'name=value"),
])
def test_bad_vars_say_what_is_wrong(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as info:
        OtlpConfig.from_vars(values)
    assert str(info.value).startswith(message)


def test_parse_headers_accepts_a_mapping_and_lowercases_names() -> None:
    assert parse_headers({"X-Api-Key": 1}) == {"x-api-key": "1"}
    assert parse_headers(None) == {}


def test_export_posts_gzipped_protobuf_that_decodes_to_the_spans(client: httpx.Client) -> None:
    with OtlpSink() as sink:
        config = OtlpConfig.from_vars({"endpoint": sink.url, "headers": "x-tenant=alpha"})
        exporter = build_otlp_exporter(config, client)
        assert isinstance(exporter, OtlpHttpSpanExporter)
        assert exporter.export([span(CHAT_OK, parent=True), error_span()]) is SpanExportResult.SUCCESS
        [request] = sink.trace_requests()
    assert request.path == "/v1/traces"
    assert request.headers["content-type"] == "application/x-protobuf"
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["x-tenant"] == "alpha"
    assert gzip.decompress(request.raw_body) == request.body
    ok, failed = sink.spans()
    assert ok == {
        "trace_id": TRACE_HEX, "span_id": SPAN_HEX, "parent_span_id": PARENT_HEX, "name": "chat gpt-4o-mini",
        "kind": "CLIENT", "start_time_unix_nano": START, "end_time_unix_nano": END,
        "status": {"code": "OK", "message": ""},
        "attributes": {**CHAT_OK, sc.RESPONSE_FINISH_REASONS: ["stop"]}, "events": [],
        "resource": {"service.name": "spangate"}, "scope": {"name": "spangate", "version": "0.1.0"},
    }
    assert failed["status"] == {"code": "ERROR", "message": "rate limited"}
    assert failed["attributes"][sc.ERROR_TYPE] == "rate_limit_exceeded"


def test_a_rejecting_collector_is_a_typed_failure_with_retry_after(client: httpx.Client) -> None:
    with OtlpSink(lambda _req: Reply(503, b"overloaded", headers={"Retry-After": "7"})) as sink:
        exporter = OtlpHttpSpanExporter(OtlpConfig.from_vars({"endpoint": sink.url}), client)
        assert exporter.export([span(CHAT_OK)]) is SpanExportResult.FAILURE
    failure = exporter.last_failure
    assert failure is not None
    assert (failure.status, failure.retryable, failure.retry_after) == (503, True, 7.0)
    with OtlpSink(always(400, b"bad")) as sink:
        exporter = OtlpHttpSpanExporter(OtlpConfig.from_vars({"endpoint": sink.url}), client)
        assert exporter.export([span(CHAT_OK)]) is SpanExportResult.FAILURE
        assert exporter.last_failure is not None and not exporter.last_failure.retryable


def test_a_refused_connection_is_a_retryable_failure_not_an_exception(client: httpx.Client) -> None:
    exporter = OtlpHttpSpanExporter(OtlpConfig.from_vars({"endpoint": f"http://127.0.0.1:{closed_port()}"}), client)
    assert exporter.export([span(CHAT_OK)]) is SpanExportResult.FAILURE
    assert exporter.last_failure is not None
    assert exporter.last_failure.retryable
    assert "ConnectError" in exporter.last_failure.detail


def test_success_clears_the_previous_failure(client: httpx.Client) -> None:
    replies = iter([Reply(500), Reply(200)])
    with OtlpSink(lambda _req: next(replies)) as sink:
        exporter = OtlpHttpSpanExporter(OtlpConfig.from_vars({"endpoint": sink.url}), client)
        assert exporter.export([span(CHAT_OK)]) is SpanExportResult.FAILURE
        assert exporter.export([span(CHAT_OK)]) is SpanExportResult.SUCCESS
    assert exporter.last_failure is None


def test_traceloop_with_only_an_api_key_sends_to_traceloop_cloud_with_a_bearer_token() -> None:
    assert traceloop_config({"api_key": "tl-key"}) == OtlpConfig(
        "https://api.traceloop.com/v1/traces", headers={"authorization": "Bearer tl-key"})
    # A collector or Honeycomb keeps working as before: its own base URL and headers win over the key.
    assert traceloop_config({"api_key": "tl-key", "endpoint": "http://c:4318", "headers": "x-honeycomb-team=h"}) \
        == OtlpConfig("http://c:4318/v1/traces", headers={"x-honeycomb-team": "h"})
    assert traceloop_config({"endpoint": "http://c:4318"}) == OtlpConfig("http://c:4318/v1/traces")
    assert traceloop_config({"endpoint": "http://c:4318", "api_key": "k"}).headers == {"authorization": "Bearer k"}


@pytest.mark.parametrize(("values", "message"), [
    ({}, "missing var 'api_key' for traceloop (TRACELOOP_API_KEY, or TRACELOOP_BASE_URL"),
    ({"api_key": "k", "protocol": "grpc"}, "unknown var 'protocol' for traceloop"),
])
def test_bad_traceloop_vars_say_what_is_wrong(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as info:
        traceloop_config(values)
    assert str(info.value).startswith(message)


def test_the_traces_specific_variables_win_over_the_general_ones() -> None:
    general = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://all:4318", "OTEL_EXPORTER_OTLP_HEADERS": "a=1",
               "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
               "OTEL_EXPORTER_OTLP_TIMEOUT": "9000"}
    traces = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4318/t", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "b=2",
              "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "none",
              "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "250"}
    [otel] = [kind for kind in DESTINATIONS if kind.name == "otel"]
    ctx = BuildContext(http_client=httpx.Client(), span_log_path=Path("unused"))
    assert otel.parse(otel.global_vars(GlobalInputs({**general, **traces}, {}, ctx))) == OtlpConfig(
        "http://traces:4318/t", "http/protobuf", {"b": "2"}, "none", 0.25)
    assert otel.parse(otel.global_vars(GlobalInputs(general, {}, ctx))) == OtlpConfig(
        "http://all:4318", "grpc", {"a": "1"}, "gzip", 9.0)
    ctx.http_client.close()


@pytest.mark.parametrize(("values", "message"), [
    ({"compression": "zstd"}, "var 'compression' (OTEL_EXPORTER_OTLP_COMPRESSION) must be one of gzip, none, "
                              "got 'zstd'"),
    ({"timeout": "10s"}, "var 'timeout' (OTEL_EXPORTER_OTLP_TIMEOUT) must be a positive number of milliseconds, "
                         "got '10s'"),
    ({"timeout": "0"}, "var 'timeout' (OTEL_EXPORTER_OTLP_TIMEOUT) must be a positive number of milliseconds"),
])
def test_bad_compression_or_timeout_names_the_var(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as info:
        OtlpConfig.from_vars({"endpoint": "http://c", **values})
    assert str(info.value).startswith(message)


def test_compression_none_posts_plain_protobuf(client: httpx.Client) -> None:
    with OtlpSink() as sink:
        exporter = OtlpHttpSpanExporter(OtlpConfig.from_vars({"endpoint": sink.url, "compression": "none"}), client)
        assert exporter.export([span(CHAT_OK)]) is SpanExportResult.SUCCESS
        [request] = sink.trace_requests()
    assert "content-encoding" not in request.headers
    assert request.raw_body == request.body
    assert [s["name"] for s in sink.spans()] == ["chat gpt-4o-mini"]


def test_the_timeout_bounds_one_export_below_the_clients_own(client: httpx.Client) -> None:
    release = threading.Event()

    def stall(_req: object) -> Reply:
        release.wait(5.0)  # the client's own timeout is 5 s; the exporter's 150 ms must end it first
        return Reply(200)

    with OtlpSink(stall) as sink:
        exporter = OtlpHttpSpanExporter(OtlpConfig.from_vars({"endpoint": sink.url, "timeout": "150"}), client)
        started = time.monotonic()
        result = exporter.export([span(CHAT_OK)])
        elapsed = time.monotonic() - started
        release.set()
    assert result is SpanExportResult.FAILURE
    assert exporter.last_failure is not None and exporter.last_failure.retryable
    assert "Timeout" in exporter.last_failure.detail
    assert elapsed < 2.0


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """A loopback OTLP/gRPC receiver that keeps each call's metadata and remaining deadline."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], float | None]] = []

    def Export(self, request: object, context: grpc.ServicerContext) -> object:  # the service's own method name
        self.calls.append((dict(context.invocation_metadata()), context.time_remaining()))
        return trace_service_pb2.ExportTraceServiceResponse()


def test_grpc_sends_the_headers_with_the_timeout_as_its_deadline(client: httpx.Client) -> None:
    collector = _Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        config = OtlpConfig.from_vars({"endpoint": f"http://127.0.0.1:{port}", "protocol": "grpc", "timeout": "1500",
                                       "compression": "none", "headers": "x-tenant=alpha"})
        exporter = build_otlp_exporter(config, client)  # gRPC makes its own channel; the client is unused
        assert exporter.export([span(CHAT_OK)]) is SpanExportResult.SUCCESS
        exporter.shutdown()
    finally:
        server.stop(None)
    [(metadata, remaining)] = collector.calls
    assert metadata["x-tenant"] == "alpha"
    assert remaining is not None and 1.0 < remaining <= 1.5  # the SDK's own default deadline is 10 s
