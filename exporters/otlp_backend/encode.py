"""Pure payloads for the ``otlp`` destination: the team's resource attributes, and OTLP/JSON.

``with_resource`` gives each span the gateway's resource merged with the team's attributes (the team's
win: ``service.name`` or Phoenix's ``openinference.project.name`` are theirs to choose). ``encode_json``
is the OTLP/HTTP JSON form of the same request: the protobuf message in protobuf's JSON mapping, with
the two differences OTLP specifies (trace and span ids as hex, not base64; enums as integers).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan

from exporters.encode.otlp_proto import copy_span, encode_otlp_traces

__all__ = ["JSON_CONTENT_TYPE", "encode_json", "encode_protobuf", "with_resource"]

JSON_CONTENT_TYPE = "application/json"
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def with_resource(spans: Sequence[ReadableSpan], attributes: Mapping[str, str]) -> list[ReadableSpan]:
    """Copies of ``spans`` whose resource carries ``attributes`` too; the originals are shared, untouched."""
    if not attributes:
        return list(spans)
    extra = Resource(dict(attributes))
    merged: dict[int, Resource] = {}  # one merge per distinct resource (in practice one per batch)
    out = []
    for span in spans:
        resource = merged.get(id(span.resource))
        if resource is None:
            resource = merged[id(span.resource)] = (span.resource or Resource.get_empty()).merge(extra)
        out.append(copy_span(span, resource=resource))
    return out


def encode_protobuf(spans: Sequence[ReadableSpan], attributes: Mapping[str, str]) -> bytes:
    return encode_otlp_traces(with_resource(spans, attributes))


def encode_json(spans: Sequence[ReadableSpan], attributes: Mapping[str, str]) -> bytes:
    request = ExportTraceServiceRequest()
    request.ParseFromString(encode_protobuf(spans, attributes))
    body = MessageToDict(request, use_integers_for_enums=True, unquote_int64_if_possible=True)
    for resource_spans in body.get("resourceSpans", ()):
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                _hex_ids(span)
                for link in span.get("links", ()):
                    _hex_ids(link)
    return json.dumps(body, separators=(",", ":")).encode()


def _hex_ids(item: dict[str, Any]) -> None:
    for name in _ID_FIELDS:
        if name in item:
            item[name] = base64.b64decode(item[name]).hex()
