"""Hand-built ``ReadableSpan``s with fixed ids and times, for exporter tests that compare whole payloads."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from contracts import semconv as sc

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
SPAN_ID = 0x00F067AA0BA902B7
PARENT_ID = 0x53995C3F42CD8AD8
START = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
END = START + 1_250_000_000
RESOURCE = Resource({"service.name": "spangate"})
SCOPE = InstrumentationScope("spangate", "0.1.0")
TRACE_HEX = format(TRACE_ID, "032x")
SPAN_HEX = format(SPAN_ID, "016x")
PARENT_HEX = format(PARENT_ID, "016x")

CHAT_OK = {
    sc.OPERATION_NAME: sc.OP_CHAT, sc.PROVIDER_NAME: sc.PROVIDER_OPENAI, sc.REQUEST_MODEL: "gpt-4o-mini",
    sc.RESPONSE_MODEL: "gpt-4o-mini-2024-07-18", sc.RESPONSE_FINISH_REASONS: ("stop",),
    sc.USAGE_INPUT_TOKENS: 12, sc.USAGE_OUTPUT_TOKENS: 30, sc.USAGE_COST: 0.0000198,
}
CHAT_ERROR = {sc.OPERATION_NAME: sc.OP_CHAT, sc.REQUEST_MODEL: "gpt-4o-mini", sc.ERROR_TYPE: "rate_limit_exceeded",
              sc.HTTP_STATUS_CODE: 429}


def span(attributes: dict[str, Any], *, name: str = "chat gpt-4o-mini", parent: bool = False,
         status: Status | None = None, events: tuple[Event, ...] = (), span_id: int = SPAN_ID) -> ReadableSpan:
    return ReadableSpan(
        name=name,
        context=SpanContext(TRACE_ID, span_id, is_remote=False, trace_flags=TraceFlags(1)),
        parent=SpanContext(TRACE_ID, PARENT_ID, is_remote=True) if parent else None,
        resource=RESOURCE,
        attributes=attributes,
        events=events,
        kind=SpanKind.CLIENT,
        status=status or Status(StatusCode.OK),
        start_time=START,
        end_time=END,
        instrumentation_scope=SCOPE,
    )


def error_span(attributes: dict[str, Any] | None = None) -> ReadableSpan:
    return span(attributes or CHAT_ERROR, status=Status(StatusCode.ERROR, "rate limited"))
