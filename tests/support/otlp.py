"""Decode OTLP/HTTP protobuf trace requests into plain dicts, for whole-payload assertions.

Used by every test of an OTLP-speaking destination (Langfuse, the generic OTLP exporter, the
collector tier): decode what arrived at a loopback sink and compare it with a literal.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.support.sinks import HttpSink, Received, Responder

TRACES_PATH = "/v1/traces"


def decode_otlp_traces(body: bytes) -> list[dict[str, Any]]:
    """One dict per span, in wire order, with its resource and scope folded in."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = attributes_dict(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = {"name": scope_spans.scope.name, "version": scope_spans.scope.version}
            spans.extend(
                {**span_dict(span), "resource": resource, "scope": scope} for span in scope_spans.spans
            )
    return spans


def span_dict(span: Span) -> dict[str, Any]:
    return {
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex() or None,
        "name": span.name,
        "kind": Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
        "start_time_unix_nano": span.start_time_unix_nano,
        "end_time_unix_nano": span.end_time_unix_nano,
        "status": {
            "code": Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"),
            "message": span.status.message,
        },
        "attributes": attributes_dict(span.attributes),
        "events": [{"name": e.name, "attributes": attributes_dict(e.attributes)} for e in span.events],
    }


def attributes_dict(attributes: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for kv in attributes:
        assert isinstance(kv, KeyValue)
        assert kv.key not in result, f"duplicate attribute {kv.key!r}"
        result[kv.key] = any_value(kv.value)
    return result


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_dict(value.kvlist_value.values)
    return getattr(value, kind)


class OtlpSink(HttpSink):
    """An ``HttpSink`` that also decodes the OTLP trace requests it received."""

    def __init__(self, respond: Responder | None = None, path_suffix: str = TRACES_PATH) -> None:
        super().__init__(respond)
        self.path_suffix = path_suffix

    def trace_requests(self) -> list[Received]:
        return [r for r in self.requests if r.method == "POST" and r.path.endswith(self.path_suffix)]

    def spans(self) -> list[dict[str, Any]]:
        return [span for req in self.trace_requests() for span in decode_otlp_traces(req.body)]

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        self.wait_for(lambda _reqs: len(self.spans()) >= count, timeout)
        return self.spans()
