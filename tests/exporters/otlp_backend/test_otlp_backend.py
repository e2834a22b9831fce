"""``otlp`` (any OTLP backend, per team): vars, the team's resource, OTLP/JSON, and the wire."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import SpanExportResult

from contracts.failures import ExportFailure
from exporters.otlp_backend import build
from exporters.otlp_backend.config import OtlpBackendConfig
from exporters.otlp_backend.encode import encode_json, encode_protobuf, with_resource
from exporters.plugin import BuildContext
from tests.support.otlp import OtlpSink, decode_otlp_traces
from tests.support.readable_spans import CHAT_OK, PARENT_HEX, SPAN_HEX, TRACE_HEX, error_span, span
from tests.support.sinks import Reply
from tests.support.upstream import closed_port

PHOENIX = {"openinference.project.name": "team-a"}


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0, trust_env=False) as http:
        yield http


def exporter_for(client: httpx.Client, **vars: Any) -> Any:
    return build(OtlpBackendConfig.from_vars(vars), BuildContext(http_client=client, span_log_path=None))


def test_vars_with_headers_and_resource_attributes_in_the_otel_env_format():
    config = OtlpBackendConfig.from_vars({
        "otlp_endpoint": "https://app.phoenix.arize.com/v1/traces/", "otlp_headers": "Authorization=Bearer%20k1",
        "otlp_resource_attributes": "openinference.project.name=team%20a,deployment.environment=prod"})
    assert config == OtlpBackendConfig("https://app.phoenix.arize.com/v1/traces", "http/protobuf",
                                       {"authorization": "Bearer k1"},
                                       {"openinference.project.name": "team a", "deployment.environment": "prod"})
    assert "k1" not in repr(config)
    as_objects = OtlpBackendConfig.from_vars({"otlp_endpoint": "http://127.0.0.1:6006/v1/traces",
                                              "otlp_protocol": "http/json", "otlp_headers": {"X-Honeycomb-Team": "h"},
                                              "otlp_resource_attributes": PHOENIX})
    assert (as_objects.protocol, as_objects.headers, as_objects.resource_attributes) == (
        "http/json", {"x-honeycomb-team": "h"}, PHOENIX)


@pytest.mark.parametrize(("vars", "message"), [
    ({}, "missing otlp callback var 'otlp_endpoint'"),
    ({"otlp_endpoint": "http://c/v1/traces", "endpoint": "x"}, "unknown otlp callback var 'endpoint'"),
    ({"otlp_endpoint": "collector:4318"}, "otlp_endpoint must be an http(s) URL"),
    ({"otlp_endpoint": "http://c", "otlp_protocol": "grpc"}, "otlp_protocol must be one of http/protobuf, http/json"),
    ({"otlp_endpoint": "http://c", "otlp_headers": "novalue"}, "otlp_headers must look like 'name=value"),
    ({"otlp_endpoint": "http://c", "otlp_headers": "k=vé"}, "otlp_headers: header names and values must be"),
    ({"otlp_endpoint": "http://c", "otlp_headers": 3}, "otlp_headers must be 'name=value,...' or an object"),
    ({"otlp_endpoint": "http://c", "otlp_resource_attributes": "x"}, "otlp_resource_attributes must look like"),
])
def test_bad_vars_are_named(vars, message):
    with pytest.raises(ValueError) as info:
        OtlpBackendConfig.from_vars(vars)
    assert str(info.value).startswith(message)


def test_with_resource_merges_the_teams_attributes_over_the_gateways_and_leaves_the_originals():
    spans = [span(CHAT_OK), error_span()]
    copies = with_resource(spans, {**PHOENIX, "service.name": "team-a-gw"})
    assert copies[0].resource is copies[1].resource  # one merge per batch, one ResourceSpans on the wire
    assert dict(copies[0].resource.attributes) == {"service.name": "team-a-gw", **PHOENIX}
    assert dict(spans[0].resource.attributes) == {"service.name": "spangate"}
    assert with_resource(spans, {}) == spans


def test_json_is_the_same_request_as_protobuf_with_hex_ids_and_integer_enums():
    spans = [span(CHAT_OK, parent=True), error_span()]
    body = json.loads(encode_json(spans, PHOENIX))
    first = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert (first["traceId"], first["spanId"], first["parentSpanId"]) == (TRACE_HEX, SPAN_HEX, PARENT_HEX)
    assert first["kind"] == 3 and isinstance(first["startTimeUnixNano"], int)
    for item in body["resourceSpans"][0]["scopeSpans"][0]["spans"]:  # back to protobuf's base64 to parse it
        for name in ("traceId", "spanId", "parentSpanId"):
            if name in item:
                item[name] = base64.b64encode(bytes.fromhex(item[name])).decode()
    parsed = ParseDict(body, ExportTraceServiceRequest()).SerializeToString()
    assert decode_otlp_traces(parsed) == decode_otlp_traces(encode_protobuf(spans, PHOENIX))


def test_export_posts_gzipped_protobuf_with_the_teams_headers_and_resource(client):
    with OtlpSink() as sink:
        exporter = exporter_for(client, otlp_endpoint=sink.url + "/api/v1/private/otel/v1/traces",
                                otlp_headers="projectName=team-a,Authorization=k", otlp_resource_attributes=PHOENIX)
        assert exporter.export([span(CHAT_OK)]) is SpanExportResult.SUCCESS
    (request,) = sink.requests
    assert request.path == "/api/v1/private/otel/v1/traces"  # the full URL as given: backends differ in paths
    assert (request.headers["projectname"], request.headers["authorization"]) == ("team-a", "k")
    assert (request.headers["content-type"], request.headers["content-encoding"]) == ("application/x-protobuf", "gzip")
    (decoded,) = decode_otlp_traces(request.body)
    assert decoded["resource"] == {"service.name": "spangate", **PHOENIX}
    assert decoded["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
    assert repr(exporter) == f"OtlpHttpSpanExporter(url='{sink.url}/api/v1/private/otel/v1/traces')"  # no headers


def test_export_as_json(client):
    with OtlpSink() as sink:
        exporter = exporter_for(client, otlp_endpoint=sink.url + "/v1/traces", otlp_protocol="http/json")
        assert exporter.export([span(CHAT_OK)]) is SpanExportResult.SUCCESS
    (request,) = sink.requests
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] == SPAN_HEX


@pytest.mark.parametrize(("reply", "failure"), [
    (Reply(500, b"down"), ExportFailure(retryable=True, detail="HTTP 500: down", status=500)),
    (Reply(429, b"slow", headers={"Retry-After": "3"}),
     ExportFailure(retryable=True, detail="HTTP 429: slow", status=429, retry_after=3.0)),
    (Reply(413, b"big"), ExportFailure(retryable=False, detail="HTTP 413: big", status=413, too_large=True)),
    (Reply(403, b"no"), ExportFailure(retryable=False, detail="HTTP 403: no", status=403)),
])
def test_answers_map_onto_the_failure_contract(client, reply, failure):
    with OtlpSink(lambda _req: reply) as sink:
        exporter = exporter_for(client, otlp_endpoint=sink.url + "/v1/traces")
        assert exporter.export([span(CHAT_OK)]) is SpanExportResult.FAILURE
    assert exporter.last_failure == failure


def test_connection_refused_is_retryable(client):
    exporter = exporter_for(client, otlp_endpoint=f"http://127.0.0.1:{closed_port()}/v1/traces",
                            otlp_headers="authorization=Bearer%20secret-token")
    assert exporter.export([span(CHAT_OK)]) is SpanExportResult.FAILURE
    assert (exporter.last_failure.retryable, exporter.last_failure.reason) == (True, "connection refused")
    assert "secret-token" not in exporter.last_failure.detail
