"""Gateway span -> the generic webhook's body. Pure: no client, no environment.

The record is the seed's ``{"data": {...}}`` with its fields (``id``, ``call_type``, ``cache_hit``,
``startTime``, ``endTime``, ``model``, ``user``, ``modelParameters``, ``messages``, ``response``,
``usage``, ``metadata``, ``cost``), where LiteLLM sends Python reprs inside strings
(``"Usage(completion_tokens=10, ...)"``) this sends the JSON values themselves. Added: ``status``
(``success`` / ``failure``), ``error`` (type, message and status code of a failure), ``team_id``,
``team_alias``, ``key_alias``, and the span's ``trace_id`` / ``span_id`` (the span id is what a
receiver dedupes on: the same call is always the same span id, whatever is retried).

``id`` is the upstream response id (``chatcmpl-...``) as in the seed; a call that got no answer
has none, and then it is the span id. Times are UTC in the seed's form. The key hash, the client
address and the provider key never appear.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from contracts import semconv as sc
from exporters.encode import openai_shape as shape

__all__ = ["encode_json_array", "encode_ndjson", "encode_single", "generic_record"]

_json = msgspec.json.Encoder()


def generic_record(span: ReadableSpan) -> dict[str, Any]:
    attrs = span.attributes or {}
    context = span.get_span_context()
    span_id = format(context.span_id, "016x")
    failed = span.status.status_code is StatusCode.ERROR
    return {"data": {
        "id": attrs.get(sc.RESPONSE_ID) or span_id,
        "call_type": attrs.get(sc.CALL_TYPE),
        "cache_hit": None,  # the gateway has no response cache: never looked up, as LiteLLM's None says
        "startTime": shape.utc_time(span.start_time),
        "endTime": shape.utc_time(span.end_time),
        "model": attrs.get(sc.REQUEST_MODEL),
        "user": attrs.get(sc.END_USER),
        "modelParameters": shape.model_parameters(attrs),
        "messages": shape.prompt(attrs),
        "response": shape.openai_response(span, attrs),
        "usage": shape.usage(attrs),
        "metadata": shape.metadata(attrs),
        "cost": attrs.get(sc.USAGE_COST),
        "status": "failure" if failed else "success",
        "error": shape.error_info(span, attrs),
        "team_id": attrs.get(sc.TEAM_ID),
        "team_alias": attrs.get(sc.TEAM_ALIAS),
        "key_alias": attrs.get(sc.KEY_ALIAS),
        "trace_id": format(context.trace_id, "032x"),
        "span_id": span_id,
    }}


def encode_single(span: ReadableSpan) -> bytes:
    """One call's body: ``{"data": {...}}``."""
    return _json.encode(generic_record(span))


def encode_json_array(spans: Sequence[ReadableSpan]) -> bytes:
    """A batch as a JSON array of the records ``encode_single`` sends one by one."""
    return _json.encode([generic_record(span) for span in spans])


def encode_ndjson(spans: Sequence[ReadableSpan]) -> bytes:
    """A batch as newline-delimited JSON: one record per line, each line ending in ``\\n``."""
    return b"".join(_json.encode(generic_record(span)) + b"\n" for span in spans)
