"""Gateway span -> the body of Athina's ``POST /api/v1/log/inference``. Pure: no client, no environment.

Required by Athina: ``language_model_id`` (the model the client asked for, as LiteLLM sends it),
``prompt`` (the OpenAI messages, a completion's prompt string, or an embeddings input) and
``response`` (the ``ChatCompletion``-like object when the output was captured; else ``""``, which
Athina accepts as a string response). Then the token counts, ``cost``, ``response_time`` (ms),
``status_code`` and, for a failure, ``error``.

Request metadata keys that are Athina fields pass through as LiteLLM passes them (``environment``,
``prompt_slug``, ``customer_id``, ``session_id``, ``context``, ``tags``, ...). Defaults where the
client gave none: ``customer_user_id`` is the OpenAI ``user``, ``user_query`` the last user message,
``external_reference_id`` the span id (Athina's handle for "our own id", so a call can be found from
the gateway's trace). ``custom_attributes`` gets the team id and alias, key alias, trace and span ids
and every other metadata key. Unlike LiteLLM's logger, nothing of the request itself is sent, so the
provider key cannot be; nor the key hash or the client's address.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgspec
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from contracts import semconv as sc
from exporters.encode import openai_shape as shape

__all__ = ["athina_record", "encode_athina"]

# Metadata keys that are Athina fields of the same name (LiteLLM's list).
FIELD_KEYS = ("environment", "prompt_slug", "customer_id", "customer_user_id", sc.META_SESSION_ID,
              "external_reference_id", "context", "expected_response", "user_query", sc.META_TAGS,
              "user_feedback", "model_options", "custom_attributes")
_OBJECT_KEYS = frozenset({"context", "custom_attributes", "model_options"})  # the gateway keeps objects as JSON
_json = msgspec.json.Encoder()


def encode_athina(span: ReadableSpan) -> bytes:
    return _json.encode(athina_record(span))


def athina_record(span: ReadableSpan) -> dict[str, Any]:
    attrs = span.attributes or {}
    failed = span.status.status_code is StatusCode.ERROR
    prompt = shape.prompt(attrs)
    response = shape.openai_response(span, attrs)
    out: dict[str, Any] = {
        "language_model_id": attrs.get(sc.REQUEST_MODEL) or "",
        "prompt": "" if prompt is None else prompt,
        "response": response if response is not None and "choices" in response else "",
    }
    usage = shape.usage(attrs)
    if usage is not None:
        out.update({k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")})
    if sc.USAGE_COST in attrs:
        out["cost"] = attrs[sc.USAGE_COST]
    if span.start_time is not None and span.end_time is not None:
        out["response_time"] = round((span.end_time - span.start_time) / 1e6)
    out["status_code"] = attrs.get(sc.HTTP_STATUS_CODE) if failed else 200
    if failed:
        out["error"] = span.status.description or attrs.get(sc.ERROR_TYPE) or "error"
    out.update(_metadata_fields(span, attrs, prompt))
    return {k: v for k, v in out.items() if v is not None}


def _metadata_fields(span: ReadableSpan, attrs: Mapping[str, Any], prompt: Any) -> dict[str, Any]:
    metadata = shape.metadata(attrs)
    fields = {k: _object(k, metadata[k]) for k in FIELD_KEYS if metadata.get(k) is not None}
    context = span.get_span_context()
    fields.setdefault("customer_user_id", attrs.get(sc.END_USER))
    fields.setdefault("user_query", shape.last_user_text(prompt))
    fields.setdefault("external_reference_id", format(context.span_id, "016x"))
    given = fields.get("custom_attributes")
    custom = {k: v for k, v in metadata.items() if k not in FIELD_KEYS}
    custom.update({"team_id": attrs.get(sc.TEAM_ID), "team_alias": attrs.get(sc.TEAM_ALIAS),
                   "key_alias": attrs.get(sc.KEY_ALIAS), "trace_id": format(context.trace_id, "032x"),
                   "span_id": format(context.span_id, "016x")})
    if isinstance(given, Mapping):
        custom.update(given)  # the client's own attributes win over the gateway's defaults
    fields["custom_attributes"] = {k: v for k, v in custom.items() if v is not None}
    return fields


def _object(key: str, value: Any) -> Any:
    if key in _OBJECT_KEYS and isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
