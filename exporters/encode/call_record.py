"""A gateway span as one call's record: the JSON object the archives (S3, DynamoDB) keep per call.

Pure: no I/O, no clock, no globals. Field names follow LiteLLM's logging payload where one exists
(``call_type``, ``startTime``, ``messages``, ``response``, ``modelParameters``, ``usage``,
``response_cost``, ``user``, ``metadata``), so queries written against LiteLLM's archives keep
working; the values are real JSON (LiteLLM writes Python reprs inside strings), in the GenAI message
shape the span carries. ``spangate.key.hash`` is never in a record: it identifies a credential and
is of no use to whoever reads the archive (``key_alias`` names the key for humans).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from contracts import semconv as sc

__all__ = ["call_id", "call_record", "iso_time"]

# Request parameters as the OpenAI body names them (LiteLLM's ``modelParameters``).
_PARAMETERS = (
    ("temperature", sc.REQUEST_TEMPERATURE), ("max_tokens", sc.REQUEST_MAX_TOKENS), ("top_p", sc.REQUEST_TOP_P),
    ("frequency_penalty", sc.REQUEST_FREQUENCY_PENALTY), ("presence_penalty", sc.REQUEST_PRESENCE_PENALTY),
    ("seed", sc.REQUEST_SEED), ("n", sc.REQUEST_CHOICE_COUNT), ("stop", sc.REQUEST_STOP_SEQUENCES),
    ("encoding_format", sc.REQUEST_ENCODING_FORMATS),
)
_USAGE = (
    ("cached_tokens", sc.USAGE_CACHE_READ_INPUT_TOKENS),
    ("cache_creation_tokens", sc.USAGE_CACHE_WRITE_INPUT_TOKENS),
    ("reasoning_tokens", sc.USAGE_REASONING_OUTPUT_TOKENS),
)


def call_id(span: ReadableSpan) -> str:
    """``<trace>-<span>`` in lowercase hex: unique per call, and the same on every retry of a batch."""
    ctx = span.get_span_context()
    return f"{ctx.trace_id:032x}-{ctx.span_id:016x}"


def iso_time(unix_nano: int | None) -> str | None:
    """RFC 3339 UTC with microseconds, e.g. ``2026-01-01T00:00:01.250000Z``."""
    if unix_nano is None:
        return None
    when = datetime.fromtimestamp(unix_nano // 10**9, tz=UTC).replace(microsecond=unix_nano % 10**9 // 1000)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def call_record(span: ReadableSpan) -> dict[str, Any]:
    attrs = span.attributes or {}
    ctx = span.get_span_context()
    failed = span.status.status_code is StatusCode.ERROR
    return {
        "id": call_id(span),
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "call_type": attrs.get(sc.CALL_TYPE) or attrs.get(sc.OPERATION_NAME),
        "status": "failure" if failed else "success",
        "startTime": iso_time(span.start_time),
        "endTime": iso_time(span.end_time),
        "completionStartTime": _first_chunk_time(span, attrs.get(sc.RESPONSE_TIME_TO_FIRST_CHUNK)),
        "model": attrs.get(sc.REQUEST_MODEL),
        "model_group": attrs.get(sc.MODEL_GROUP),
        "model_id": attrs.get(sc.DEPLOYMENT_ID),
        "response_model": attrs.get(sc.RESPONSE_MODEL),
        "custom_llm_provider": attrs.get(sc.PROVIDER_NAME),
        "response_id": attrs.get(sc.RESPONSE_ID),
        "stream": bool(attrs.get(sc.REQUEST_STREAM, False)),
        "messages": _json_value(attrs.get(sc.INPUT_MESSAGES)),
        "system_instructions": _json_value(attrs.get(sc.SYSTEM_INSTRUCTIONS)),
        "response": _json_value(attrs.get(sc.OUTPUT_MESSAGES)),
        "modelParameters": {name: _plain(attrs[key]) for name, key in _PARAMETERS if key in attrs},
        "usage": _usage(attrs),
        "response_cost": attrs.get(sc.USAGE_COST),
        "user": attrs.get(sc.END_USER),
        "team_id": attrs.get(sc.TEAM_ID),
        "team_alias": attrs.get(sc.TEAM_ALIAS),
        "key_alias": attrs.get(sc.KEY_ALIAS),
        "metadata": _metadata(attrs),
        "error": _error(span, attrs) if failed else None,
    }


def _usage(attrs: Any) -> dict[str, int] | None:
    prompt, completion = attrs.get(sc.USAGE_INPUT_TOKENS), attrs.get(sc.USAGE_OUTPUT_TOKENS)
    if prompt is None and completion is None:
        return None
    usage = {"prompt_tokens": prompt or 0, "completion_tokens": completion or 0,
             "total_tokens": (prompt or 0) + (completion or 0)}
    usage.update({name: attrs[key] for name, key in _USAGE if attrs.get(key)})
    return usage


def _metadata(attrs: Any) -> dict[str, Any]:
    prefix = sc.METADATA_PREFIX
    return {key[len(prefix):]: _json_value(value) if isinstance(value, str) and value[:1] in "[{" else _plain(value)
            for key, value in attrs.items() if key.startswith(prefix) and len(key) > len(prefix)}


def _error(span: ReadableSpan, attrs: Any) -> dict[str, Any]:
    return {"type": attrs.get(sc.ERROR_TYPE), "message": span.status.description,
            "status_code": attrs.get(sc.HTTP_STATUS_CODE)}


def _first_chunk_time(span: ReadableSpan, seconds: Any) -> str | None:
    if span.start_time is None or isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    return iso_time(span.start_time + round(seconds * 1e9))


def _json_value(value: Any) -> Any:
    """A JSON-string attribute as its value; text that is not JSON stays text."""
    if not isinstance(value, str):
        return _plain(value)
    try:
        return json.loads(value)
    except ValueError:
        return value


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
