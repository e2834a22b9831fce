"""``encode_otlp_traces`` writes what opentelemetry-python's ``encode_spans`` serializes, byte for byte.

The reference is given each span with the team on its ``Resource`` (``team_resource``), which is what
the encoder promises: one resource per team, the span's attributes unchanged.
"""

from __future__ import annotations

import logging
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from opentelemetry.util.types import Attributes

from contracts.semconv import TEAM_ALIAS, TEAM_ID
from exporters.encode.otlp_proto import copy_span, encode_otlp_traces
from tests.support.readable_spans import CHAT_ERROR, CHAT_OK, error_span, span

RESOURCE = Resource({"service.name": "spangate", "service.version": "0.1.0"})
OTHER_RESOURCE = Resource({"service.name": "other"}, schema_url="https://opentelemetry.io/schemas/1.21.0")
GATEWAY_SCOPE = InstrumentationScope("spangate", "0.1.0")
HTTPX_SCOPE = InstrumentationScope("opentelemetry.instrumentation.httpx", "0.66b2",
                                   "https://opentelemetry.io/schemas/1.11.0", {"scope.attr": "x"})

# Every attribute value type we emit, and the edges of each.
VALUES: dict[str, Any] = {
    "str": "hello", "empty": "", "unicode": "héllo 👋 — 日本", "long": "x" * 70_000,
    "int": 42, "zero": 0, "negative": -7, "int64.max": (1 << 63) - 1, "int64.min": -(1 << 63),
    "true": True, "false": False, "float": 0.0000198, "float.zero": 0.0, "float.neg": -1.5, "inf": math.inf,
    "bytes": b"\x00\x01\xff", "strs": ("stop", "length"), "ints": (1, 2, 3), "floats": (0.5, 1.5),
    "bools": (True, False), "empty.seq": (), "list": ["a", "b"], "": "empty key",
    "dict": {"a": 1, "b": ("x",), 3: None},
}
BAD_VALUES: dict[str, Any] = {"too.big": 1 << 64, "surrogate": "\ud800", "object": object(), "ok": "kept",
                              "bad.seq": (1, object()), "bad.dict": {"a": object()}}


def ctx(span_id: int, trace_id: int = 0xFEED, *, remote: bool = False, state: TraceState | None = None) -> SpanContext:
    return SpanContext(trace_id, span_id, is_remote=remote, trace_flags=TraceFlags(1), trace_state=state)


def make(span_id: int, attributes: Attributes = None, **fields: Any) -> ReadableSpan:
    values: dict[str, Any] = {
        "name": "chat bench-chat", "context": ctx(span_id), "parent": None, "resource": RESOURCE,
        "attributes": attributes, "kind": SpanKind.CLIENT, "status": Status(StatusCode.OK),
        "start_time": 1_700_000_000_000_000_000, "end_time": 1_700_000_000_250_000_000,
        "instrumentation_scope": GATEWAY_SCOPE,
    }
    return ReadableSpan(**(values | fields))


def varied() -> list[ReadableSpan]:
    rng = random.Random(7)
    spans = [
        span(CHAT_OK), span(CHAT_OK, parent=True), error_span(CHAT_ERROR),
        make(1, VALUES),
        make(2, {"a": 1}, parent=ctx(9, remote=True), kind=SpanKind.SERVER, instrumentation_scope=HTTPX_SCOPE),
        make(3, {}, name="", kind=SpanKind.INTERNAL, status=Status(StatusCode.ERROR, "boom — ☃"),
             context=ctx(3, state=TraceState([("vendor", "v1"), ("other", "x")]))),
        make(4, {"e": 1}, events=(Event("first", {"k": "v", "n": 2}, 1_700_000_000_100_000_000),
                                  Event("", None, 1_700_000_000_200_000_000)),
             links=(Link(ctx(5, 0xBEEF, remote=True), {"link": True}), Link(ctx(6))),
             kind=SpanKind.PRODUCER, instrumentation_scope=None),
        make(7, {"x": "y"}, resource=OTHER_RESOURCE, kind=SpanKind.CONSUMER),
        make(8, {"x": "z"}, resource=Resource(dict(RESOURCE.attributes))),  # equal, not identical: one group
        make(9, None, start_time=None, end_time=None, status=Status(StatusCode.UNSET)),
        make(10, {"max": rng.getrandbits(63)}, context=ctx((1 << 64) - 1, (1 << 128) - 1)),
        make(11, {"after": "other scope"}, instrumentation_scope=InstrumentationScope("spangate", "0.1.0")),
        make(12, {TEAM_ID: "alpha", TEAM_ALIAS: "Alpha", "n": 1}),
        make(13, {TEAM_ID: "beta", "n": 2}, instrumentation_scope=HTTPX_SCOPE),
        make(14, {TEAM_ALIAS: "alias without id"}),  # no team: the plain resource
        make(15, {TEAM_ID: "alpha", TEAM_ALIAS: "Alpha"}, resource=OTHER_RESOURCE),
        make(16, {TEAM_ID: "alpha", TEAM_ALIAS: "Alpha", "n": 3}, instrumentation_scope=HTTPX_SCOPE),
        make(17, {TEAM_ID: "gamma"}, resource=Resource({"service.name": "spangate", TEAM_ID: "operator's"})),
    ]
    return spans


def team_resource(span: ReadableSpan) -> ReadableSpan:
    """The span as the reference must see it: its team's id and alias on the resource too."""
    attributes = span.attributes or {}
    team = {k: attributes[k] for k in (TEAM_ID, TEAM_ALIAS) if k in attributes and TEAM_ID in attributes}
    if not team:
        return span
    resource = Resource({**span.resource.attributes, **team}, span.resource.schema_url)
    return copy_span(span, resource=resource)


def sdk_bytes(spans: list[ReadableSpan]) -> bytes:
    return encode_spans([team_resource(s) for s in spans]).SerializeToString()


def sdk_request(spans: list[ReadableSpan]) -> ExportTraceServiceRequest:
    return encode_spans([team_resource(s) for s in spans])


def test_varied_spans_encode_byte_for_byte_like_opentelemetry() -> None:
    spans = varied()
    ours = encode_otlp_traces(spans)
    assert ours == sdk_bytes(spans)
    assert ExportTraceServiceRequest.FromString(ours) == sdk_request(spans)


@pytest.mark.parametrize("index", range(len(varied())))
def test_each_span_alone_encodes_like_opentelemetry(index: int) -> None:
    one = [varied()[index]]
    assert encode_otlp_traces(one) == sdk_bytes(one)


def test_sdk_spans_with_dropped_attributes_events_and_links_encode_like_opentelemetry() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE, span_limits=SpanLimits(max_span_attributes=3,
                                                                       max_event_attributes=1, max_events=1,
                                                                       max_links=1))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("spangate", "0.1.0")
    with tracer.start_as_current_span("chat", links=[Link(ctx(1)), Link(ctx(2))]) as parent:
        parent.set_attributes({"a": 1, "b": 2.5, "c": "three", "d": True})
        parent.add_event("one", {"x": 1, "y": 2})
        parent.add_event("two")
        with tracer.start_as_current_span("POST", kind=SpanKind.CLIENT) as child:
            child.set_attribute("http.response.status_code", 200)
    spans = list(memory.get_finished_spans())
    provider.shutdown()
    assert spans[1].dropped_attributes == 1 and spans[1].dropped_events == 1 and spans[1].dropped_links == 1
    assert encode_otlp_traces(spans) == sdk_bytes(spans)


def test_values_opentelemetry_cannot_encode_are_left_out_the_same_way(caplog: pytest.LogCaptureFixture) -> None:
    spans = [make(1, BAD_VALUES)]
    with caplog.at_level(logging.CRITICAL):  # both encoders log each skipped attribute
        ours, theirs = encode_otlp_traces(spans), sdk_bytes(spans)
    assert ours == theirs
    kept = [kv.key for kv in ExportTraceServiceRequest.FromString(ours).resource_spans[0].scope_spans[0].spans[0]
            .attributes]
    assert kept == ["ok"]


def test_no_spans_is_an_empty_request() -> None:
    assert encode_otlp_traces([]) == sdk_bytes([]) == b""


# --- generated spans ------------------------------------------------------------------------------

_attr_value = st.one_of(
    st.text(max_size=20), st.integers(-(1 << 63), (1 << 63) - 1), st.booleans(),
    st.floats(allow_nan=False), st.binary(max_size=8),
    st.lists(st.text(max_size=5), max_size=3).map(tuple), st.lists(st.integers(-5, 5), max_size=3).map(tuple),
    st.lists(st.floats(allow_nan=False), max_size=3).map(tuple), st.lists(st.booleans(), max_size=3).map(tuple),
)
_attrs = st.dictionaries(st.text(max_size=12), _attr_value, max_size=5)
# A few resources and scopes reused across batches, as a process has them (the encoder keeps their
# encoded fields by identity), plus equal-but-distinct copies and a scope-less span.
_RESOURCES = [RESOURCE, OTHER_RESOURCE, Resource({}), Resource({"service.name": "spangate", "k": (1, 2)})]
_SCOPES = [GATEWAY_SCOPE, HTTPX_SCOPE, None, InstrumentationScope("x", None, None, {"a": True})]
# Teams as the gateway writes them (an id, with or without an alias), an alias alone, and none.
_TEAMS: list[dict[str, Any]] = [{}, {TEAM_ID: "alpha"}, {TEAM_ID: "alpha", TEAM_ALIAS: "Alpha"},
                                {TEAM_ID: "beta", TEAM_ALIAS: "Beta ☃"}, {TEAM_ALIAS: "no id"}]


@st.composite
def _span(draw: st.DrawFn) -> ReadableSpan:
    resource = draw(st.sampled_from(_RESOURCES))
    if draw(st.booleans()):
        resource = Resource(dict(resource.attributes), resource.schema_url)  # equal, not identical
    parent = draw(st.one_of(st.none(), st.builds(ctx, st.integers(1, 1 << 64 - 1), remote=st.booleans())))
    attributes = draw(_attrs) | draw(st.sampled_from(_TEAMS))
    return make(draw(st.integers(1, (1 << 64) - 1)), attributes, resource=resource, parent=parent,
                instrumentation_scope=draw(st.sampled_from(_SCOPES)), kind=draw(st.sampled_from(list(SpanKind))),
                status=Status(draw(st.sampled_from(list(StatusCode))), None),
                events=tuple(Event(name, attrs, 1_700_000_000_100_000_000)
                             for name, attrs in draw(st.lists(st.tuples(st.text(max_size=8), _attrs), max_size=2))))


@settings(max_examples=150, deadline=None)
@given(batches=st.lists(st.lists(_span(), min_size=1, max_size=6), min_size=1, max_size=4))
def test_generated_batches_encode_byte_for_byte_like_opentelemetry(batches: list[list[ReadableSpan]]) -> None:
    for spans in batches:  # one after the other: the later batches meet resources and scopes already seen
        assert encode_otlp_traces(spans) == sdk_bytes(spans)
