"""Gateway span -> what LangSmith's OTLP endpoint understands. Pure: no client, no environment.

LangSmith reads most GenAI names the gateway span already carries (``gen_ai.request.*`` as invocation
params, ``gen_ai.usage.input_tokens``/``output_tokens``, ``gen_ai.input.messages``/``output.messages``
as the run's inputs and outputs), so those pass through. This module adds what only LangSmith has
(its docs' "Supported OpenTelemetry attribute mapping"):

- ``langsmith.span.kind``: ``llm`` for chat and completions, ``embedding`` for embeddings (it maps
  ``gen_ai.operation.name`` itself only for ``chat``/``completion``/``embedding``, not ``embeddings``);
- the request metadata as the seed documents it: ``generation_name`` -> run name, ``trace_user_id``
  (else the OpenAI ``user``) -> ``metadata.user_id``, ``session_id`` -> ``metadata.session_id`` (the
  key LangSmith groups threads by), ``tags`` -> ``langsmith.span.tags``, every other key ->
  ``langsmith.metadata.<key>``; the team and key alias as metadata, so runs can be filtered by them;
- ``gen_ai.system`` and ``metadata.ls_model_name``, which LangSmith prices the run with;
  ``gen_ai.usage.total_tokens``;
- an ``exception`` event on a failed call: LangSmith marks a run as errored from that event.

The raw ``spangate.metadata.*`` attributes are removed once mapped (LangSmith would show each key
twice), and ``spangate.key.hash`` is never sent (it identifies a credential and helps no analysis).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import StatusCode

from contracts import semconv
from exporters.encode.otlp_proto import copy_span, encode_otlp_traces
from exporters.encode.request_metadata import metadata_text, parse_tags, pop_metadata

__all__ = ["encode_langsmith", "to_langsmith_span"]

_SPAN_KINDS = {
    semconv.OP_CHAT: semconv.LANGSMITH_KIND_LLM,
    semconv.OP_TEXT_COMPLETION: semconv.LANGSMITH_KIND_LLM,
    semconv.OP_EMBEDDINGS: semconv.LANGSMITH_KIND_EMBEDDING,
}
# LangSmith's ``ls_provider`` names where they differ from the GenAI provider names.
_PROVIDERS = {semconv.PROVIDER_AZURE: "azure"}
_MAPPED_KEYS = frozenset({semconv.META_GENERATION_NAME, semconv.META_TRACE_USER_ID, semconv.META_TAGS})
_DROPPED = frozenset({semconv.KEY_HASH})
# Gateway context worth filtering runs by, as LangSmith metadata keys.
_CONTEXT_METADATA = ((semconv.TEAM_ID, "team_id"), (semconv.TEAM_ALIAS, "team_alias"), (semconv.KEY_ALIAS, "key_alias"))
USER_ID_KEY = "user_id"
MODEL_NAME_KEY = "ls_model_name"


def encode_langsmith(spans: Sequence[ReadableSpan]) -> bytes:
    """Serialized OTLP ``ExportTraceServiceRequest`` for LangSmith (not compressed)."""
    return encode_otlp_traces([to_langsmith_span(span) for span in spans])


def to_langsmith_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of one gateway span carrying the LangSmith attributes (the original is untouched)."""
    attributes = {k: v for k, v in (span.attributes or {}).items() if k not in _DROPPED}
    metadata = pop_metadata(attributes)
    name = metadata_text(metadata.get(semconv.META_GENERATION_NAME)) or span.name
    attributes[semconv.LANGSMITH_TRACE_NAME] = name
    kind = _SPAN_KINDS.get(attributes.get(semconv.OPERATION_NAME, ""))
    if kind is not None:
        attributes[semconv.LANGSMITH_SPAN_KIND] = kind
    attributes.update(_model_attributes(attributes))
    attributes.update(_metadata_attributes(metadata, attributes))
    return copy_span(span, name=name, attributes=attributes, events=_events(span, attributes))


def _model_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    provider = attributes.get(semconv.PROVIDER_NAME)
    if isinstance(provider, str):
        out[semconv.LANGSMITH_GEN_AI_SYSTEM] = _PROVIDERS.get(provider, provider)
    model = attributes.get(semconv.RESPONSE_MODEL) or attributes.get(semconv.REQUEST_MODEL)
    if isinstance(model, str):
        out[_meta(MODEL_NAME_KEY)] = model
    tokens = [attributes.get(k) for k in (semconv.USAGE_INPUT_TOKENS, semconv.USAGE_OUTPUT_TOKENS)]
    counts = [t for t in tokens if isinstance(t, int) and not isinstance(t, bool)]
    if counts:
        out[semconv.LANGSMITH_USAGE_TOTAL_TOKENS] = sum(counts)
    reasoning = attributes.get(semconv.USAGE_REASONING_OUTPUT_TOKENS)
    if isinstance(reasoning, int) and not isinstance(reasoning, bool):
        out[semconv.LANGSMITH_USAGE_REASONING_TOKENS] = reasoning
    return out


def _metadata_attributes(metadata: Mapping[str, Any], attributes: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attribute, key in _CONTEXT_METADATA:
        if attribute in attributes:
            out[_meta(key)] = attributes[attribute]
    user_id = metadata_text(metadata.get(semconv.META_TRACE_USER_ID)) or metadata_text(attributes.get(semconv.END_USER))
    if user_id is not None:
        out[_meta(USER_ID_KEY)] = user_id
    tags = parse_tags(metadata.get(semconv.META_TAGS))
    if tags:
        out[semconv.LANGSMITH_SPAN_TAGS] = ",".join(tags)  # LangSmith splits its tags at commas
    for key, value in metadata.items():
        if key not in _MAPPED_KEYS and value is not None:
            out[_meta(key)] = value  # session_id lands here, which is where LangSmith's threads look
    return out


def _events(span: ReadableSpan, attributes: Mapping[str, Any]) -> tuple[Event, ...] | None:
    """The span's events plus an ``exception`` event when it failed without one (None: unchanged)."""
    if span.status.status_code is not StatusCode.ERROR:
        return None
    if any(event.name == semconv.EXCEPTION_EVENT for event in span.events):
        return None
    error_type = metadata_text(attributes.get(semconv.ERROR_TYPE)) or "error"
    message = span.status.description or error_type
    event = Event(semconv.EXCEPTION_EVENT, {semconv.EXCEPTION_TYPE: error_type, semconv.EXCEPTION_MESSAGE: message},
                  timestamp=span.end_time)
    return (*span.events, event)


def _meta(key: str) -> str:
    return semconv.LANGSMITH_METADATA_PREFIX + key
