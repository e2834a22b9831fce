"""encode_langfuse on hand-built gateway spans, checked as whole decoded OTLP payloads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langfuse import Langfuse
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from app.calls.attributes import metadata_attributes
from contracts import semconv as sc
from exporters.langfuse.encode import encode_langfuse, langfuse_trace_id, parse_tags, usage_details
from tests.support.otlp import decode_otlp_traces
from tests.support.readable_spans import (
    END,
    PARENT_ID,
    RESOURCE,
    SPAN_HEX,
    START,
    TRACE_HEX,
    span,
)


def gateway_span(
    attributes: dict[str, Any],
    *,
    name: str = "chat gpt-4o",
    metadata: dict[str, Any] | None = None,
    parent: bool = False,
    status: Status | None = None,
) -> ReadableSpan:
    attrs = {sc.TEAM_ID: "team-a", sc.KEY_HASH: "9f86d081884c7d65", **attributes}
    attrs.update({sc.metadata_key(k): v for k, v in (metadata or {}).items()})
    # The general names the gateway writes beside the metadata (user.id, session.id, ...), as it writes them.
    attrs.update({k: v for k, v in metadata_attributes(metadata or {}).items() if not k.startswith(sc.METADATA_PREFIX)})
    return span(attrs, name=name, parent=parent, status=status or Status(StatusCode.UNSET))


CHAT = {
    sc.OPERATION_NAME: sc.OP_CHAT,
    sc.PROVIDER_NAME: sc.PROVIDER_OPENAI,
    sc.REQUEST_MODEL: "gpt-4o",
    sc.RESPONSE_MODEL: "gpt-4o-2024-08-06",
    sc.USAGE_INPUT_TOKENS: 120,
    sc.USAGE_OUTPUT_TOKENS: 30,
    sc.USAGE_COST: 0.00061,
    sc.INPUT_MESSAGES: '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]',
    sc.OUTPUT_MESSAGES: '[{"role":"assistant","parts":[{"type":"text","content":"hello"}]}]',
}


def decode_one(span: ReadableSpan) -> dict[str, Any]:
    (decoded,) = decode_otlp_traces(encode_langfuse([span]))
    return decoded


def expected(attributes: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "trace_id": TRACE_HEX,
        "span_id": SPAN_HEX,
        "parent_span_id": None,
        "name": "chat gpt-4o",
        "kind": "CLIENT",
        "start_time_unix_nano": START,
        "end_time_unix_nano": END,
        "status": {"code": "UNSET", "message": ""},
        "attributes": attributes,
        "events": [],
        "resource": {"service.name": "spangate", sc.TEAM_ID: "team-a"},  # the team on the resource too
        "scope": {"name": "spangate", "version": "0.1.0"},
        **fields,
    }


def test_chat_with_the_seed_metadata_maps_every_key():
    span = gateway_span(
        {**CHAT, sc.USAGE_CACHE_READ_INPUT_TOKENS: 100, sc.USAGE_REASONING_OUTPUT_TOKENS: 10},
        metadata={
            "generation_name": "ishaan-test-generation",
            "generation_id": "gen-id22",
            "trace_id": "trace-id22",
            "trace_user_id": "user-id2",
            "session_id": "sess-1",
            "tags": '["prod", "beta"]',
            "feature": "search",
            "attempt": 2,
        },
        parent=True,
    )
    seeded = Langfuse.create_trace_id(seed="trace-id22")
    assert decode_one(span) == expected(
        {
            sc.TEAM_ID: "team-a",
            **CHAT,
            sc.USAGE_CACHE_READ_INPUT_TOKENS: 100,
            sc.USAGE_REASONING_OUTPUT_TOKENS: 10,
            "langfuse.trace.name": "ishaan-test-generation",
            "user.id": "user-id2",
            "session.id": "sess-1",
            sc.CONVERSATION_ID: "sess-1",  # written by the gateway, passed through
            "langfuse.trace.tags": ["prod", "beta"],
            "langfuse.observation.type": "generation",
            "langfuse.observation.usage_details": json.dumps(
                {
                    "input": 20,
                    "output": 20,
                    "input_cached_tokens": 100,
                    "output_reasoning_tokens": 10,
                    "total": 150,
                },
                separators=(",", ":"),
            ),
            "langfuse.observation.metadata.generation_id": "gen-id22",
            "langfuse.observation.metadata.otel_trace_id": TRACE_HEX,
            "langfuse.trace.metadata.trace_id": "trace-id22",
            "langfuse.observation.metadata.trace_id": "trace-id22",
            "langfuse.trace.metadata.feature": "search",
            "langfuse.observation.metadata.feature": "search",
            "langfuse.trace.metadata.attempt": 2,
            "langfuse.observation.metadata.attempt": 2,
        },
        # The request chose the trace: the span moves there as a root, its old parent is elsewhere.
        trace_id=seeded,
        name="ishaan-test-generation",
    )


def test_stream_without_metadata_keeps_trace_and_parent_and_gets_completion_start():
    span = gateway_span(
        {**CHAT, sc.REQUEST_STREAM: True, sc.RESPONSE_TIME_TO_FIRST_CHUNK: 0.25, sc.END_USER: "u-7"},
        parent=True,
    )
    assert decode_one(span) == expected(
        {
            sc.TEAM_ID: "team-a",
            **CHAT,
            sc.REQUEST_STREAM: True,
            sc.RESPONSE_TIME_TO_FIRST_CHUNK: 0.25,
            sc.END_USER: "u-7",
            "user.id": "u-7",
            "langfuse.trace.name": "chat gpt-4o",
            "langfuse.observation.type": "generation",
            "langfuse.observation.usage_details": '{"input":120,"output":30,"total":150}',
            "langfuse.observation.completion_start_time": "2026-01-01T00:00:00.250000Z",
        },
        parent_span_id=format(PARENT_ID, "016x"),
    )


def test_embedding_is_an_embedding_observation_with_input_usage_only():
    attributes = {
        sc.OPERATION_NAME: sc.OP_EMBEDDINGS,
        sc.PROVIDER_NAME: sc.PROVIDER_OPENAI,
        sc.REQUEST_MODEL: "text-embedding-3-small",
        sc.USAGE_INPUT_TOKENS: 8,
    }
    span = gateway_span(attributes, name="embeddings text-embedding-3-small")
    assert decode_one(span) == expected(
        {
            sc.TEAM_ID: "team-a",
            **attributes,
            "langfuse.trace.name": "embeddings text-embedding-3-small",
            "langfuse.observation.type": "embedding",
            "langfuse.observation.usage_details": '{"input":8,"total":8}',
        },
        name="embeddings text-embedding-3-small",
    )


def test_error_span_without_usage_keeps_status_and_claims_no_usage():
    attributes = {
        sc.OPERATION_NAME: sc.OP_CHAT,
        sc.REQUEST_MODEL: "gpt-4o",
        sc.ERROR_TYPE: "rate_limit_exceeded",
    }
    span = gateway_span(attributes, status=Status(StatusCode.ERROR, "upstream 429"))
    assert decode_one(span) == expected(
        {
            sc.TEAM_ID: "team-a",
            **attributes,
            "langfuse.trace.name": "chat gpt-4o",
            "langfuse.observation.type": "generation",
        },
        status={"code": "ERROR", "message": "upstream 429"},
    )


def test_key_hash_and_raw_metadata_attributes_never_leave():
    span = gateway_span(CHAT, metadata={"feature": "x", "trace_user_id": "u"})
    names = decode_one(span)["attributes"].keys()
    assert sc.KEY_HASH not in names
    assert not [n for n in names if n.startswith(sc.METADATA_PREFIX)]


def test_unknown_operation_gets_no_observation_type_and_original_span_is_untouched():
    span = gateway_span({sc.OPERATION_NAME: "moderation"}, metadata={"generation_name": "g"})
    before = dict(span.attributes)
    attributes = decode_one(span)["attributes"]
    assert "langfuse.observation.type" not in attributes
    assert dict(span.attributes) == before
    assert span.name == "chat gpt-4o"


@pytest.mark.parametrize(
    ("tags", "expected_tags"),
    [
        ('["a", "b"]', ["a", "b"]),
        (("a", "b"), ["a", "b"]),
        (["a"], ["a"]),
        ("single", ["single"]),
        ("[not json", ["[not json"]),
        ("[1, 2]", ["1", "2"]),
    ],
)
def test_tags_in_both_stored_forms(tags, expected_tags):
    span = gateway_span(CHAT, metadata={"tags": tags})
    assert decode_one(span)["attributes"]["langfuse.trace.tags"] == expected_tags


@pytest.mark.parametrize("tags", ["", "[]", ()])
def test_empty_tags_are_not_sent(tags):
    assert parse_tags(tags) == []
    span = gateway_span(CHAT, metadata={"tags": tags})
    assert "langfuse.trace.tags" not in decode_one(span)["attributes"]


def test_hex_trace_id_is_used_as_is_and_others_match_langfuse_create_trace_id():
    hex_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert langfuse_trace_id(hex_id) == int(hex_id, 16)
    for seed in ("trace-id22", hex_id.upper(), "0" * 32, "ünïcode"):
        assert format(langfuse_trace_id(seed), "032x") == Langfuse.create_trace_id(seed=seed)


def test_trace_id_equal_to_the_span_trace_keeps_the_parent():
    span = gateway_span(CHAT, metadata={"trace_id": TRACE_HEX}, parent=True)
    decoded = decode_one(span)
    assert (decoded["trace_id"], decoded["parent_span_id"]) == (TRACE_HEX, format(PARENT_ID, "016x"))
    assert "langfuse.observation.metadata.otel_trace_id" not in decoded["attributes"]


def test_batch_keeps_order_and_rewrites_each_span_on_its_own():
    spans = [gateway_span(CHAT, metadata={"trace_id": "t1"}), gateway_span(CHAT)]
    decoded = decode_otlp_traces(encode_langfuse(spans))
    assert [d["trace_id"] for d in decoded] == [Langfuse.create_trace_id(seed="t1"), TRACE_HEX]


def test_explicit_user_id_wins_over_end_user():
    span = gateway_span({**CHAT, sc.END_USER: "end"}, metadata={"trace_user_id": "meta"})
    assert decode_one(span)["attributes"]["user.id"] == "meta"


def test_usage_details_ignore_non_numeric_counts():
    assert usage_details({sc.USAGE_INPUT_TOKENS: "12"}) is None
    assert usage_details({sc.USAGE_INPUT_TOKENS: True}) is None
    assert usage_details({sc.USAGE_OUTPUT_TOKENS: 5, sc.USAGE_CACHE_WRITE_INPUT_TOKENS: 3}) == {
        "output": 5,
        "input_cache_creation": 3,
        "total": 5,
    }


def test_the_cache_write_count_reaches_langfuse_under_the_v141_name_it_reads():
    attributes = decode_one(gateway_span({**CHAT, sc.USAGE_CACHE_WRITE_INPUT_TOKENS: 20}))["attributes"]
    assert attributes[sc.V141_USAGE_CACHE_CREATION_INPUT_TOKENS] == 20
    assert sc.USAGE_CACHE_WRITE_INPUT_TOKENS not in attributes  # one count, not two Langfuse usage types
    assert json.loads(attributes[sc.LANGFUSE_OBSERVATION_USAGE_DETAILS])["input_cache_creation"] == 20


def test_spans_from_the_sdk_encode_the_same_way():
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("spangate", "0.1.0")
    with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, start_time=START) as span:
        span.set_attributes({**CHAT, sc.metadata_key("tags"): ["a", "b"], sc.metadata_key("trace_id"): "t"})
        span.add_event("gen_ai.choice", {"index": 0})
    provider.shutdown()
    (decoded,) = decode_otlp_traces(encode_langfuse(memory.get_finished_spans()))
    assert decoded["trace_id"] == Langfuse.create_trace_id(seed="t")
    assert decoded["attributes"]["langfuse.trace.tags"] == ["a", "b"]
    assert decoded["events"] == [{"name": "gen_ai.choice", "attributes": {"index": 0}}]
    assert decoded["scope"] == {"name": "spangate", "version": "0.1.0"}
