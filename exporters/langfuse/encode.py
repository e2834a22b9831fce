"""Gateway span -> what Langfuse's OTLP endpoint understands. Pure: no client, no environment.

Langfuse already reads the GenAI conventions the gateway span carries (model from
``gen_ai.response.model``/``gen_ai.request.model``, cost from ``gen_ai.usage.cost``, input and
output from ``gen_ai.input.messages``/``gen_ai.output.messages``, level ERROR from the span
status), so those attributes pass through unchanged. This module adds what only Langfuse has:

- request metadata (``spangate.metadata.<key>``) mapped as the seed documents it:
  ``generation_name`` -> observation name and trace name, ``trace_id`` -> the trace the span
  lands in, ``trace_user_id`` -> ``user.id``, ``session_id`` -> ``session.id``, ``tags`` ->
  ``langfuse.trace.tags``, ``generation_id`` -> observation metadata, any other key -> trace and
  observation metadata. The raw ``spangate.metadata.*`` attributes are removed once mapped, because
  Langfuse copies every attribute it does not consume into the observation's metadata and would
  show each key twice.
- ``langfuse.observation.type`` (generation, or embedding for embeddings calls).
- ``langfuse.observation.usage_details``: the GenAI counts *include* cached input and reasoning
  output, while Langfuse sums every usage type into the total, so the raw ``gen_ai.usage.*``
  would double-count them. Explicit details (cached and reasoning split out, an explicit total)
  take precedence over the raw attributes in Langfuse's ingestion.
- ``langfuse.observation.completion_start_time`` from the time to first chunk, for streams.

``spangate.key.hash`` is never sent: Langfuse would store it verbatim in the metadata of every
observation, readable by everyone with access to the team's project and kept for the project's
retention, while it identifies a credential and carries nothing a team can use for analysis
(``spangate.key.alias`` names the key for humans).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext

from contracts import semconv
from exporters.encode.otlp_proto import copy_span, encode_otlp_traces
from exporters.encode.request_metadata import metadata_text, parse_tags, pop_metadata

__all__ = ["encode_langfuse", "langfuse_trace_id", "to_langfuse_span"]

_HEX_TRACE_ID = re.compile(r"[0-9a-f]{32}")  # Langfuse's own rule for a valid trace id
_OBSERVATION_TYPES = {
    semconv.OP_CHAT: semconv.LANGFUSE_TYPE_GENERATION,
    semconv.OP_TEXT_COMPLETION: semconv.LANGFUSE_TYPE_GENERATION,
    semconv.OP_EMBEDDINGS: semconv.LANGFUSE_TYPE_EMBEDDING,
}
# Metadata keys with a dedicated mapping; every other key becomes plain metadata.
_MAPPED_KEYS = frozenset(
    {
        semconv.META_GENERATION_NAME,
        semconv.META_GENERATION_ID,
        semconv.META_TRACE_USER_ID,
        semconv.META_SESSION_ID,
        semconv.META_TAGS,
    }
)
_DROPPED = frozenset({semconv.KEY_HASH})
# Observation metadata key holding the span's own OTel trace id when the request chose another.
ORIGINAL_TRACE_ID_KEY = "otel_trace_id"


def encode_langfuse(spans: Sequence[ReadableSpan]) -> bytes:
    """Serialized OTLP ``ExportTraceServiceRequest`` for Langfuse (not compressed)."""
    return encode_otlp_traces([to_langfuse_span(span) for span in spans])


def langfuse_trace_id(value: str) -> int:
    """The OTel trace id for a request's ``trace_id`` metadata.

    A valid Langfuse trace id (32 lowercase hex, not all zero) is used as is, so it can be looked up
    directly; anything else is hashed exactly like ``Langfuse.create_trace_id(seed=value)``, so the
    trace is found with that call (and by its ``trace_id`` trace metadata).
    """
    if _HEX_TRACE_ID.fullmatch(value) and int(value, 16):
        return int(value, 16)
    return int.from_bytes(hashlib.sha256(value.encode("utf-8")).digest()[:16], "big")


def to_langfuse_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of one gateway span carrying the Langfuse attributes (the original is untouched)."""
    attributes = {k: v for k, v in (span.attributes or {}).items() if k not in _DROPPED}
    metadata = pop_metadata(attributes)
    name = metadata_text(metadata.get(semconv.META_GENERATION_NAME)) or span.name
    context, parent = span.get_span_context(), span.parent
    trace_seed = metadata_text(metadata.get(semconv.META_TRACE_ID))
    if trace_seed is not None:
        new_trace_id = langfuse_trace_id(trace_seed)
        if new_trace_id != context.trace_id:
            attributes[_observation_meta(ORIGINAL_TRACE_ID_KEY)] = format(context.trace_id, "032x")
            # A parent lives in the old trace: keeping it would point at a span that is not there.
            context, parent = _in_trace(context, new_trace_id), None
    attributes[semconv.LANGFUSE_TRACE_NAME] = name
    attributes.update(_trace_attributes(metadata, attributes))
    attributes.update(_metadata_attributes(metadata))
    attributes.update(_observation_attributes(span, attributes))
    _v141_cache_name(attributes)
    return copy_span(span, name=name, context=context, parent=parent, attributes=attributes)


def _v141_cache_name(attributes: dict[str, Any]) -> None:
    """Langfuse reads ``gen_ai.usage.*`` by their v1.41 names and knows no ``cache_write``: the copy
    carries the cache-write count under ``cache_creation`` (contracts.md), not under both."""
    written = attributes.pop(semconv.USAGE_CACHE_WRITE_INPUT_TOKENS, None)
    if written is not None:
        attributes[semconv.V141_USAGE_CACHE_CREATION_INPUT_TOKENS] = written


def _in_trace(context: SpanContext, trace_id: int) -> SpanContext:
    return SpanContext(
        trace_id=trace_id,
        span_id=context.span_id,
        is_remote=False,
        trace_flags=context.trace_flags,
        trace_state=context.trace_state,
    )


def _trace_attributes(metadata: Mapping[str, Any], attributes: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    user_id = metadata_text(metadata.get(semconv.META_TRACE_USER_ID))
    if user_id is None and semconv.USER_ID not in attributes:
        # The OpenAI ``user`` field names the end user, which is what Langfuse's users view is for.
        user_id = metadata_text(attributes.get(semconv.END_USER))
    if user_id is not None:
        out[semconv.USER_ID] = user_id
    session_id = metadata_text(metadata.get(semconv.META_SESSION_ID))
    if session_id is not None:
        out[semconv.SESSION_ID] = session_id
    tags = parse_tags(metadata.get(semconv.META_TAGS))
    if tags:
        out[semconv.LANGFUSE_TRACE_TAGS] = tags
    return out


def _metadata_attributes(metadata: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    generation_id = metadata_text(metadata.get(semconv.META_GENERATION_ID))
    if generation_id is not None:
        out[_observation_meta(semconv.META_GENERATION_ID)] = generation_id
    for key, value in metadata.items():
        # ``trace_id`` stays here on purpose: the raw id is searchable as trace metadata even when
        # it had to be hashed into an OTel trace id.
        if key in _MAPPED_KEYS or value is None:
            continue
        # Trace metadata is what the trace list filters on; observation metadata keeps the key
        # on the generation itself when the span is not the trace's root.
        out[semconv.LANGFUSE_TRACE_METADATA_PREFIX + key] = value
        out[_observation_meta(key)] = value
    return out


def _observation_attributes(span: ReadableSpan, attributes: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    observation_type = _OBSERVATION_TYPES.get(attributes.get(semconv.OPERATION_NAME, ""))
    if observation_type is not None:
        out[semconv.LANGFUSE_OBSERVATION_TYPE] = observation_type
    usage = usage_details(attributes)
    if usage is not None:
        out[semconv.LANGFUSE_OBSERVATION_USAGE_DETAILS] = json.dumps(usage, separators=(",", ":"))
    first_chunk = _completion_start_time(span, attributes)
    if first_chunk is not None:
        out[semconv.LANGFUSE_OBSERVATION_COMPLETION_START_TIME] = first_chunk
    return out


def usage_details(attributes: Mapping[str, Any]) -> dict[str, int] | None:
    """Langfuse usage types from the GenAI counts; ``None`` when the span reports no usage."""
    input_tokens = _count(attributes.get(semconv.USAGE_INPUT_TOKENS))
    output_tokens = _count(attributes.get(semconv.USAGE_OUTPUT_TOKENS))
    if input_tokens is None and output_tokens is None:
        return None
    cached = _count(attributes.get(semconv.USAGE_CACHE_READ_INPUT_TOKENS)) or 0
    created = _count(attributes.get(semconv.USAGE_CACHE_WRITE_INPUT_TOKENS,
                                    attributes.get(semconv.V141_USAGE_CACHE_CREATION_INPUT_TOKENS))) or 0
    reasoning = _count(attributes.get(semconv.USAGE_REASONING_OUTPUT_TOKENS)) or 0
    details: dict[str, int] = {}
    if input_tokens is not None:
        details["input"] = max(input_tokens - cached - created, 0)
    if output_tokens is not None:
        details["output"] = max(output_tokens - reasoning, 0)
    # Key names as Langfuse's built-in OpenAI/Anthropic prices use them.
    for key, value in (
        ("input_cached_tokens", cached),
        ("input_cache_creation", created),
        ("output_reasoning_tokens", reasoning),
    ):
        if value:
            details[key] = value
    details["total"] = (input_tokens or 0) + (output_tokens or 0)
    return details


def _completion_start_time(span: ReadableSpan, attributes: Mapping[str, Any]) -> str | None:
    seconds = attributes.get(semconv.RESPONSE_TIME_TO_FIRST_CHUNK)
    if span.start_time is None or isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return None
    when_ns = span.start_time + round(seconds * 1e9)
    when = datetime.fromtimestamp(when_ns // 10**9, tz=UTC).replace(microsecond=when_ns % 10**9 // 1000)
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _observation_meta(key: str) -> str:
    return semconv.LANGFUSE_OBSERVATION_METADATA_PREFIX + key


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)
