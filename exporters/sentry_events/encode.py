"""Failed gateway span -> one Sentry error event (a plain dict). Pure: no client, no environment.

Only spans whose status is ERROR become events: Sentry is where failures are triaged, and a
successful call has nothing to triage (``success_callback: ["sentry"]`` therefore sends nothing).
The one exception is the admin API's synthetic span (``POST /team/{id}/callback/test``): it becomes an
``info`` event, so the test reaches Sentry and proves the DSN instead of succeeding without sending.

- ``event_id`` is derived from the span id and trace id, so a batch the delivery layer retries
  carries the same ids and Sentry drops the copies it already has.
- The exception is the gateway's error type and message (the span's ``error.type`` and status
  description); the fingerprint groups issues by error type and requested model, so one rate-limited
  model is one issue, not one per message wording.
- Tags (searchable in Sentry): model, provider, operation, team, key alias, error type, HTTP status.
  Contexts: ``trace`` (trace and span ids, op ``gen_ai.<operation>``: the event links to the trace),
  ``llm`` (models, usage, cost), ``spangate`` (team, key alias, model group, request metadata).
- Prompts and answers are not sent: an error tracker's events are read by more people, and kept
  longer, than a team's LLM-observability project. ``spangate.key.hash`` is never sent either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from contracts import semconv as sc

__all__ = ["encode_sentry", "event_id", "startup_event", "to_sentry_event"]

LOGGER = "spangate"
_TAG_MAX = 200  # Sentry truncates longer tag values; cut them here so what is shown is what was sent
_TAGS = (("model", sc.REQUEST_MODEL), ("provider", sc.PROVIDER_NAME), ("operation", sc.OPERATION_NAME),
         ("team_id", sc.TEAM_ID), ("team_alias", sc.TEAM_ALIAS), ("key_alias", sc.KEY_ALIAS),
         ("error_type", sc.ERROR_TYPE), ("http_status", sc.HTTP_STATUS_CODE))
_LLM = (("operation", sc.OPERATION_NAME), ("provider", sc.PROVIDER_NAME), ("request_model", sc.REQUEST_MODEL),
        ("response_model", sc.RESPONSE_MODEL), ("stream", sc.REQUEST_STREAM),
        ("stream_outcome", sc.STREAM_OUTCOME), ("input_tokens", sc.USAGE_INPUT_TOKENS),
        ("output_tokens", sc.USAGE_OUTPUT_TOKENS), ("cost", sc.USAGE_COST))
_SPANGATE = (("team_id", sc.TEAM_ID), ("team_alias", sc.TEAM_ALIAS), ("key_alias", sc.KEY_ALIAS),
             ("model_group", sc.MODEL_GROUP), ("deployment_id", sc.DEPLOYMENT_ID), ("call_type", sc.CALL_TYPE),
             ("http_status", sc.HTTP_STATUS_CODE))
# Sentry's span status names (its trace context), for the HTTP statuses the gateway answers with.
_TRACE_STATUS = {400: "invalid_argument", 401: "unauthenticated", 403: "permission_denied", 404: "not_found",
                 408: "deadline_exceeded", 413: "failed_precondition", 429: "resource_exhausted",
                 499: "cancelled", 501: "unimplemented", 503: "unavailable", 504: "deadline_exceeded"}


def encode_sentry(spans: Sequence[ReadableSpan]) -> list[dict[str, Any]]:
    """One event per failed span, in order; successful spans are skipped."""
    return [to_sentry_event(span) for span in spans if _failed(span) or (span.attributes or {}).get(sc.SYNTHETIC)]


def startup_event(error_type: str, message: str) -> dict[str, Any]:
    """The gateway could not start: one fatal event, grouped by its kind (config, store, ...)."""
    return {"level": "fatal", "logger": LOGGER, "transaction": "startup",
            "exception": {"values": [{"type": error_type, "value": message,
                                      "mechanism": {"type": LOGGER, "handled": False}}]},
            "fingerprint": [LOGGER, "startup", error_type], "tags": {"phase": "startup"}}


def event_id(span: ReadableSpan) -> str:
    """32 hex digits, stable across retries: the span id, then the low half of the trace id."""
    context = span.get_span_context()
    return f"{context.span_id:016x}{context.trace_id & (2**64 - 1):016x}"


def to_sentry_event(span: ReadableSpan) -> dict[str, Any]:
    attributes = span.attributes or {}
    event: dict[str, Any] = {
        "event_id": event_id(span),
        "logger": LOGGER,
        "transaction": span.name,
        **(_error(span, attributes) if _failed(span) else _test_message(span)),
        "tags": {tag: _tag(attributes[name]) for tag, name in _TAGS if attributes.get(name) is not None},
        "contexts": {"trace": _trace_context(span, attributes), "llm": _pick(attributes, _LLM),
                     "spangate": _spangate_context(attributes)},
    }
    if span.end_time is not None:
        event["timestamp"] = _iso(span.end_time)
        if span.start_time is not None:
            event["contexts"]["spangate"]["duration_ms"] = round((span.end_time - span.start_time) / 1e6, 3)
    end_user = attributes.get(sc.END_USER)
    if end_user is not None:
        event["user"] = {"id": str(end_user)}
    return event


def _failed(span: ReadableSpan) -> bool:
    return span.status is not None and span.status.status_code is StatusCode.ERROR


def _error(span: ReadableSpan, attributes: Mapping[str, Any]) -> dict[str, Any]:
    error_type = str(attributes.get(sc.ERROR_TYPE) or "error")
    model = str(attributes.get(sc.REQUEST_MODEL) or attributes.get(sc.MODEL_GROUP) or "unknown")
    return {"level": "error",
            "exception": {"values": [{"type": error_type, "value": (span.status.description or error_type),
                                      "mechanism": {"type": LOGGER, "handled": True}}]},
            "fingerprint": [LOGGER, error_type, model]}


def _test_message(span: ReadableSpan) -> dict[str, Any]:
    return {"level": "info", "message": {"formatted": f"spangate callback test: {span.name}"},
            "fingerprint": [LOGGER, "callback-test"]}


def _trace_context(span: ReadableSpan, attributes: Mapping[str, Any]) -> dict[str, Any]:
    context = span.get_span_context()
    trace: dict[str, Any] = {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "op": sc.SENTRY_OPS.get(str(attributes.get(sc.OPERATION_NAME)), sc.SENTRY_OP_DEFAULT),
        "status": _TRACE_STATUS.get(attributes.get(sc.HTTP_STATUS_CODE), "internal_error"),
    }
    if span.parent is not None:
        trace["parent_span_id"] = format(span.parent.span_id, "016x")
    return trace


def _spangate_context(attributes: Mapping[str, Any]) -> dict[str, Any]:
    context = _pick(attributes, _SPANGATE)
    prefix = sc.METADATA_PREFIX
    metadata = {k[len(prefix):]: _plain(v) for k, v in attributes.items()
                if k.startswith(prefix) and len(k) > len(prefix)}
    if metadata:
        context["metadata"] = metadata
    return context


def _pick(attributes: Mapping[str, Any], fields: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {key: _plain(attributes[name]) for key, name in fields if attributes.get(name) is not None}


def _plain(value: Any) -> Any:
    """Attribute values as JSON: OTel sequences are tuples."""
    return list(value) if isinstance(value, tuple) else value


def _tag(value: Any) -> str:
    text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
    return text[:_TAG_MAX]


def _iso(ns: int) -> str:
    when = datetime.fromtimestamp(ns // 10**9, tz=UTC).replace(microsecond=ns % 10**9 // 1000)
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")
