"""Span <-> bytes for the spool: pure functions, compact JSON via msgspec.

Ids are hex strings (JSON numbers stop at 64 bits); attribute sequences come back as tuples, as
the SDK stores them. Dropped-attribute counts are not kept: the spool carries what was recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from contracts import semconv as sc

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class _Peek(msgspec.Struct):
    """What a dead-letter listing reads of a record: ids, times, attributes left undecoded (raw)."""

    c: list[Any]
    t: list[int | None]
    a: dict[str, msgspec.Raw]


_peeker = msgspec.json.Decoder(_Peek)
_MODEL_ATTRS = (sc.RESPONSE_MODEL, sc.REQUEST_MODEL)


class CorruptRecord(ValueError):
    """A spooled record that cannot be turned back into a span."""


def encode_span(span: ReadableSpan) -> bytes:
    scope = span.instrumentation_scope
    return _encoder.encode(
        {
            "n": span.name,
            "c": _context(span.context),
            "p": _context(span.parent),
            "k": span.kind.value,
            "s": [span.status.status_code.value, span.status.description],
            "t": [span.start_time, span.end_time],
            "a": _attrs(span.attributes),
            "e": [[e.name, e.timestamp, _attrs(e.attributes)] for e in span.events],
            "l": [[_context(li.context), _attrs(li.attributes)] for li in span.links],
            "r": [_attrs(span.resource.attributes), span.resource.schema_url],
            "i": None if scope is None else [scope.name, scope.version, scope.schema_url, _attrs(scope.attributes)],
        }
    )


def decode_span(data: bytes) -> ReadableSpan:
    try:
        doc = _decoder.decode(data)
        return _build(doc)
    except (msgspec.DecodeError, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise CorruptRecord(f"{type(exc).__name__}: {exc}") from exc


def peek(data: bytes) -> tuple[int, int, float | None, str | None]:
    """(trace id, span id, end time in unix seconds, model) of a record, without building the span:
    message content stays undecoded bytes (a listing never reads it, and it is most of a record)."""
    try:
        doc = _peeker.decode(data)
        trace_id, span_id = int(doc.c[0], 16), int(doc.c[1], 16)
        model = next((msgspec.json.decode(doc.a[k]) for k in _MODEL_ATTRS if k in doc.a), None)
    except (msgspec.DecodeError, msgspec.ValidationError, IndexError, TypeError, ValueError) as exc:
        raise CorruptRecord(f"{type(exc).__name__}: {exc}") from exc
    end = doc.t[1] if len(doc.t) > 1 else None
    return trace_id, span_id, None if end is None else end / 1e9, model if isinstance(model, str) else None


def _build(doc: dict[str, Any]) -> ReadableSpan:
    code, description = doc["s"]
    start, end = doc["t"]
    return ReadableSpan(
        name=doc["n"],
        context=_span_context(doc["c"]),
        parent=_span_context(doc["p"]),
        kind=SpanKind(doc["k"]),
        status=Status(StatusCode(code), description),
        start_time=start,
        end_time=end,
        attributes=_unattrs(doc["a"]),
        events=tuple(Event(name, _unattrs(attrs), ts) for name, ts, attrs in doc["e"]),
        links=tuple(Link(_span_context(ctx), _unattrs(attrs)) for ctx, attrs in doc["l"]),
        resource=Resource(_unattrs(doc["r"][0]) or {}, doc["r"][1]),
        instrumentation_scope=_scope(doc["i"]),
    )


def _context(ctx: SpanContext | None) -> list[Any] | None:
    if ctx is None:
        return None
    return [
        f"{ctx.trace_id:032x}",
        f"{ctx.span_id:016x}",
        int(ctx.trace_flags),
        list(ctx.trace_state.items()),
        ctx.is_remote,
    ]


def _span_context(raw: list[Any] | None) -> SpanContext | None:
    if raw is None:
        return None
    trace_id, span_id, flags, state, remote = raw
    return SpanContext(
        int(trace_id, 16),
        int(span_id, 16),
        is_remote=bool(remote),
        trace_flags=TraceFlags(flags),
        trace_state=TraceState([tuple(kv) for kv in state]),
    )


def _scope(raw: list[Any] | None) -> InstrumentationScope | None:
    if raw is None:
        return None
    name, version, schema_url, attrs = raw
    return InstrumentationScope(name, version, schema_url, _unattrs(attrs))


def _attrs(attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(attrs) if attrs else {}


def _unattrs(raw: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise TypeError("attributes must be an object")
    return {k: tuple(v) if isinstance(v, Sequence) and not isinstance(v, str) else v for k, v in raw.items()}
