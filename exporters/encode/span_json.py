"""A finished span as a plain JSON-able dict: the record the ``file`` destination writes.

Pure: no I/O, no clock, no globals. Ids are lowercase hex as in W3C trace context; times are
Unix nanoseconds as in OTLP.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan


def span_to_dict(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    parent = span.parent
    return {
        "name": span.name,
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_span_id": f"{parent.span_id:016x}" if parent else None,
        "kind": span.kind.name,
        "start_time_unix_nano": span.start_time,
        "end_time_unix_nano": span.end_time,
        "duration_ms": round((span.end_time - span.start_time) / 1e6, 3) if span.end_time and span.start_time else None,
        "status": {"code": span.status.status_code.name, "description": span.status.description},
        "attributes": {k: list(v) if isinstance(v, tuple) else v for k, v in (span.attributes or {}).items()},
        "events": [{"name": e.name, "time_unix_nano": e.timestamp, "attributes": dict(e.attributes or {})}
                   for e in span.events],
        "resource": dict(span.resource.attributes) if span.resource else {},
    }
