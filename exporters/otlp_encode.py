"""Pure OTLP/protobuf encoding helpers shared by every OTLP-speaking destination.

The encoding itself is opentelemetry-python's ``encode_spans`` (the public re-export in
``opentelemetry.exporter.otlp.proto.common.trace_encoder``): it groups spans by resource and
instrumentation scope and builds an ``ExportTraceServiceRequest``. This module only adds the
two things destinations need around it: serialized bytes, and a way to hand the encoder a
*changed copy* of a finished span (renamed, re-parented, attributes rewritten) without touching
the span other destinations are exporting at the same time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext

__all__ = ["PROTOBUF_CONTENT_TYPE", "copy_span", "encode_otlp_traces"]

PROTOBUF_CONTENT_TYPE = "application/x-protobuf"

_UNSET: Any = object()


def encode_otlp_traces(spans: Sequence[ReadableSpan]) -> bytes:
    """Serialized ``ExportTraceServiceRequest`` for ``spans`` (not compressed)."""
    return encode_spans(spans).SerializeToString()


def copy_span(
    span: ReadableSpan,
    *,
    name: str | None = None,
    context: SpanContext | None = None,
    parent: SpanContext | None = _UNSET,
    attributes: Mapping[str, Any] | None = None,
) -> ReadableSpan:
    """A new ``ReadableSpan`` equal to ``span`` except for the given fields.

    ``parent=None`` makes the copy a root span; leaving it out keeps the original parent.
    Spans are shared between every destination of a team, so exporters must never mutate one.
    """
    return ReadableSpan(
        name=span.name if name is None else name,
        context=span.get_span_context() if context is None else context,
        parent=span.parent if parent is _UNSET else parent,
        resource=span.resource,
        attributes=dict(span.attributes or {}) if attributes is None else dict(attributes),
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
