"""Gateway spans -> Datadog log items, in request-sized chunks. Pure: no client, no environment.

One span is one log. Datadog's reserved attributes carry what its Log Explorer shows first:
``message`` (the span name, and the error for failures), ``status`` (``info`` or ``error``),
``ddsource``, ``service``, ``date`` (start, epoch ms) and ``duration`` (ns); ``ddtags`` carry
``env``, ``team`` and ``model``, the facets a team filters on. The span's attributes follow as
nested JSON objects (``gen_ai.usage.input_tokens`` -> ``{"gen_ai": {"usage": {"input_tokens": ..}}}``),
which is how Datadog itself names an attribute path, so ``@gen_ai.usage.input_tokens`` finds it.
``trace_id``/``span_id`` (hex) and ``dd.trace_id``/``dd.span_id`` (decimal, the low 64 bits, which
is what Datadog's trace correlation reads) tie the log to the trace.

``spangate.key.hash`` is never sent: it identifies a credential and helps no analysis.

Limits (Datadog's, per request): 1,000 logs and 5 MB uncompressed, so ``encode_datadog`` cuts the
batch into chunks under both. A log over 1 MB would be truncated by Datadog wherever the cut falls;
here the captured content (the largest field first) is shortened instead and the log says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from contracts import semconv

__all__ = ["LogLabels", "encode_datadog", "to_log_item"]

MAX_LOGS_PER_REQUEST: Final = 1000
MAX_REQUEST_BYTES: Final = 5_000_000
MAX_LOG_BYTES: Final = 1_000_000
_TAG_LIMIT = 200  # Datadog keeps 200 characters of a tag
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_\-:./]")  # what Datadog would turn into "_" anyway (and ',' splits)
_DROPPED = frozenset({semconv.KEY_HASH})
_CONTENT = (semconv.INPUT_MESSAGES, semconv.OUTPUT_MESSAGES, semconv.SYSTEM_INSTRUCTIONS)
_LOW64 = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class LogLabels:
    """What every log of one destination carries, from its config."""

    source: str
    service: str
    env: str | None = None


def encode_datadog(spans: Sequence[ReadableSpan], labels: LogLabels) -> list[list[dict[str, Any]]]:
    """The batch as chunks of log items, each chunk one ``submit_log`` request within Datadog's limits."""
    chunks: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 2  # "[" and "]"
    for span in spans:
        item = to_log_item(span, labels)
        # datadog-api-client sends json.dumps(body) with the default separators: measure the same way.
        item_size = len(json.dumps(item)) + 2  # ", " before it (one too many for the first: a margin)
        if current and (len(current) == MAX_LOGS_PER_REQUEST or size + item_size > MAX_REQUEST_BYTES):
            chunks.append(current)
            current, size = [], 2
        current.append(item)
        size += item_size
    if current:
        chunks.append(current)
    return chunks


def to_log_item(span: ReadableSpan, labels: LogLabels) -> dict[str, Any]:
    """One span as one Datadog log item (plain JSON values)."""
    attributes = {k: v for k, v in (span.attributes or {}).items() if k not in _DROPPED}
    item = _log_item(span, labels, attributes)
    if len(json.dumps(item)) > MAX_LOG_BYTES:
        item = _log_item(span, labels, _shortened(span, labels, attributes))
    return item


def _log_item(span: ReadableSpan, labels: LogLabels, attributes: Mapping[str, Any]) -> dict[str, Any]:
    failed = span.status.status_code is StatusCode.ERROR or semconv.ERROR_TYPE in attributes
    context = span.get_span_context()
    item: dict[str, Any] = {
        "ddsource": labels.source,
        "ddtags": _tags(labels, attributes),
        "service": labels.service,
        "status": "error" if failed else "info",
        "message": _message(span, attributes, failed),
        "date": (span.start_time or 0) // 1_000_000,
        "duration": (span.end_time or 0) - (span.start_time or 0),
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "dd": {"trace_id": str(context.trace_id & _LOW64), "span_id": str(context.span_id)},
    }
    if failed:
        item["error"] = {"kind": str(attributes.get(semconv.ERROR_TYPE, "error")),
                         "message": span.status.description or ""}
    _nest(item, attributes)
    return item


def _message(span: ReadableSpan, attributes: Mapping[str, Any], failed: bool) -> str:
    if not failed:
        return span.name
    error = attributes.get(semconv.ERROR_TYPE) or "error"
    detail = span.status.description
    return f"{span.name} failed: {error}" + (f": {detail}" if detail else "")


def _tags(labels: LogLabels, attributes: Mapping[str, Any]) -> str:
    model = attributes.get(semconv.RESPONSE_MODEL) or attributes.get(semconv.REQUEST_MODEL)
    pairs = (("env", labels.env), ("team", attributes.get(semconv.TEAM_ID)), ("model", model))
    return ",".join(f"{name}:{_tag_value(value)}" for name, value in pairs if value not in (None, ""))


def _tag_value(value: Any) -> str:
    return _TAG_UNSAFE.sub("_", str(value))[:_TAG_LIMIT]


def _nest(item: dict[str, Any], attributes: Mapping[str, Any]) -> None:
    """Each dotted attribute as a path of objects; a name that collides with a path stays flat."""
    for name, value in attributes.items():
        *parents, leaf = name.split(".")
        node = item
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                node = None
                break
            node = child
        if node is None or leaf in node:
            item[name] = _json_value(value)
        else:
            node[leaf] = _json_value(value)


def _json_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _shortened(span: ReadableSpan, labels: LogLabels, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes with captured content cut until the log fits in ``MAX_LOG_BYTES``, largest field
    first. The cut is proportional to the field's JSON size (non-ASCII text escapes to 6 bytes a
    character), re-measured a few times; only logs over 1 MB pay for it."""
    out = {**attributes, semconv.DATADOG_CONTENT_TRUNCATED: True}
    fields = sorted((n for n in _CONTENT if isinstance(out.get(n), str)), key=lambda n: -len(json.dumps(out[n])))
    for name in fields:
        for _ in range(4):
            excess = len(json.dumps(_log_item(span, labels, out))) - MAX_LOG_BYTES
            text = out[name]
            if excess <= 0 or not text:
                break
            field_bytes = len(json.dumps(text))
            keep = max(0, len(text) * (field_bytes - excess) // field_bytes - 16)
            out[name] = text[:keep]
    return out
