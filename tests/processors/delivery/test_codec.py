from __future__ import annotations

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from processors.delivery.codec import CorruptRecord, decode_span, encode_span


def full_span() -> ReadableSpan:
    return ReadableSpan(
        name="chat gpt-4o",
        context=SpanContext(0xABCDEF << 64 | 7, 0x1234, False, TraceFlags(1), TraceState([("vendor", "v1")])),
        parent=SpanContext(0xABCDEF << 64 | 7, 0x99, True),
        resource=Resource({"service.name": "spangate", "host.port": 8080}, "https://schema/1"),
        attributes={
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.request.temperature": 0.5,
            "gen_ai.request.stream": True,
            "gen_ai.response.finish_reasons": ("stop", "length"),
            "ints": (1, 2, 3),
        },
        events=[Event("gen_ai.choice", {"index": 0, "flags": (True, False)}, 1_500)],
        links=[Link(SpanContext(0x1, 0x2, False), {"why": "retry"})],
        kind=SpanKind.CLIENT,
        status=Status(StatusCode.ERROR, "upstream 500"),
        start_time=1_000,
        end_time=2_000,
        instrumentation_scope=InstrumentationScope("spangate", "0.1", "https://schema/2", {"a": "b"}),
    )


def test_round_trip_keeps_every_field_the_exporters_read() -> None:
    span = full_span()
    back = decode_span(encode_span(span))
    assert back.to_json() == span.to_json()
    assert back.context.trace_state == span.context.trace_state
    assert back.attributes["gen_ai.response.finish_reasons"] == ("stop", "length")
    assert isinstance(back.attributes["gen_ai.request.temperature"], float)
    assert back.instrumentation_scope == span.instrumentation_scope
    assert back.resource.schema_url == "https://schema/1"


def test_span_without_parent_or_scope_round_trips() -> None:
    span = ReadableSpan("bare", SpanContext(3, 4, False), start_time=1, end_time=2)
    back = decode_span(encode_span(span))
    assert (back.parent, back.instrumentation_scope, back.name) == (None, None, "bare")


@pytest.mark.parametrize("data", [b"", b"{not json", b'{"n": "x"}', b"[1, 2]", b'{"n":1,"c":null}'])
def test_damaged_records_raise_one_error_type(data: bytes) -> None:
    with pytest.raises(CorruptRecord):
        decode_span(data)
