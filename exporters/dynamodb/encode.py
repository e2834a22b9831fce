"""Gateway spans -> DynamoDB items, one per call. Pure: no client, no clock, no environment.

The item has hash key ``id`` (``<trace id>-<span id>``: a retried batch rewrites the same items)
and the fields of LiteLLM's documented item: ``call_type``, ``startTime``, ``endTime``, ``model``,
``user``, and ``messages``, ``response``, ``metadata``, ``modelParameters``, ``usage`` as JSON
strings (real JSON; LiteLLM writes Python reprs). Numbers that queries filter on are attributes of
their own, as ``Decimal`` (DynamoDB refuses floats). Absent values are left out, not stored as NULL.

An item may not exceed 400 KB. Over the budget, the largest content fields are replaced, largest
first, by ``{"spangate_truncated": true, "original_bytes": N, "head": "<start of the text>"}`` (still
JSON) and the item lists them in ``truncated``; ``DynamoItems.truncated`` counts such items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Context, Decimal
from typing import Any, Final

import msgspec
from opentelemetry.sdk.trace import ReadableSpan

from exporters.encode.call_record import call_record

__all__ = ["MAX_ITEM_BYTES", "DynamoItems", "encode_dynamodb", "item_size"]

# DynamoDB's limit is 400 KB (409,600 bytes) counting names and values; the margin covers the
# size rules this estimate simplifies (numbers, list overhead).
MAX_ITEM_BYTES: Final = 400_000
_PLAIN = ("id", "trace_id", "span_id", "call_type", "status", "startTime", "endTime", "completionStartTime",
          "model", "model_group", "model_id", "response_model", "custom_llm_provider", "response_id", "stream",
          "response_cost", "user", "team_id", "team_alias", "key_alias")
_AS_JSON = ("messages", "system_instructions", "response", "metadata", "modelParameters", "usage", "error")
_TRUNCATABLE = ("messages", "response", "system_instructions", "metadata")
_TOKENS = ("prompt_tokens", "completion_tokens", "total_tokens")
_DECIMAL = Context(prec=38)  # DynamoDB numbers carry up to 38 significant digits
_json = msgspec.json.Encoder()
_MARKER_OVERHEAD = 80  # bytes of the marker around its head, original_bytes included


@dataclass(frozen=True, slots=True)
class DynamoItems:
    items: list[dict[str, Any]]
    truncated: int  # items that had content cut to fit the 400 KB limit


def encode_dynamodb(spans: Sequence[ReadableSpan], max_bytes: int = MAX_ITEM_BYTES) -> DynamoItems:
    items, truncated = [], 0
    for span in spans:
        item = to_item(call_record(span))
        if item_size(item) > max_bytes:
            item = _fit(item, max_bytes)
            truncated += 1
        items.append(item)
    return DynamoItems(items, truncated)


def to_item(record: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {k: _number(record[k]) for k in _PLAIN if record.get(k) is not None}
    item.update({k: _json.encode(record[k]).decode() for k in _AS_JSON if record.get(k) is not None})
    usage = record.get("usage") or {}
    item.update({k: Decimal(usage[k]) for k in _TOKENS if k in usage})
    return item


def item_size(item: dict[str, Any]) -> int:
    """Bytes as DynamoDB counts them, closely enough: UTF-8 names and strings, numbers at most 21."""
    return sum(len(k.encode()) + _value_size(v) for k, v in item.items())


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list):
        return 3 + sum(1 + _value_size(v) for v in value)
    return 21 if isinstance(value, Decimal) else 1


def _fit(item: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    item = {**item, "truncated": []}
    for field in sorted((f for f in _TRUNCATABLE if f in item), key=lambda f: -len(item[f].encode())):
        if item_size(item) <= max_bytes:
            break
        excess = item_size(item) + len(field) + 1 - max_bytes  # the name joins the ``truncated`` list
        item["truncated"] = [*item["truncated"], field]
        item[field] = _shortened(item[field], len(item[field].encode()) - excess)
    return item


def _shortened(text: str, budget: int) -> str:
    """The truncation marker for ``text``, at most ``budget`` bytes when that leaves room for one."""
    raw = text.encode()
    head_bytes = max(budget - _MARKER_OVERHEAD, 0)
    while True:  # escaping can make the head's JSON longer than its bytes: halve until it fits
        head = raw[:head_bytes].decode("utf-8", "ignore")
        marker = _json.encode({"spangate_truncated": True, "original_bytes": len(raw), "head": head}).decode()
        if len(marker.encode()) <= budget or head_bytes == 0:
            return marker
        head_bytes //= 2


def _number(value: Any) -> Any:
    if isinstance(value, float):
        return _DECIMAL.create_decimal(repr(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value
