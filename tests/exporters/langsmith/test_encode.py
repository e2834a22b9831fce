"""encode_langsmith on hand-built gateway spans, checked as whole decoded OTLP payloads."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Status, StatusCode

from contracts import semconv as sc
from exporters.langsmith.encode import encode_langsmith, to_langsmith_span
from tests.exporters.langfuse.test_encode import CHAT, expected, gateway_span
from tests.support.otlp import decode_otlp_traces
from tests.support.readable_spans import END, PARENT_HEX

COMMON = {"langsmith.metadata.team_id": "team-a", "gen_ai.system": "openai",
          "langsmith.metadata.ls_model_name": "gpt-4o-2024-08-06", "gen_ai.usage.total_tokens": 150}


def decode_one(span: ReadableSpan) -> dict[str, Any]:
    (decoded,) = decode_otlp_traces(encode_langsmith([span]))
    return decoded


def test_chat_with_the_seed_metadata_maps_every_key():
    span = gateway_span(
        {**CHAT, sc.USAGE_REASONING_OUTPUT_TOKENS: 10, sc.TEAM_ALIAS: "search", sc.KEY_ALIAS: "ci"},
        metadata={
            "generation_name": "ishaan-test-generation",
            "generation_id": "gen-id22",
            "trace_id": "trace-id22",
            "trace_user_id": "user-id2",
            "session_id": "sess-1",
            "tags": '["prod", "beta"]',
            "attempt": 2,
        },
        parent=True,
    )
    assert decode_one(span) == expected(
        {
            sc.TEAM_ID: "team-a", **CHAT, sc.USAGE_REASONING_OUTPUT_TOKENS: 10, sc.TEAM_ALIAS: "search",
            sc.KEY_ALIAS: "ci",
            # The general names the gateway span now carries pass through beside LangSmith's own.
            sc.USER_ID: "user-id2", sc.SESSION_ID: "sess-1", sc.CONVERSATION_ID: "sess-1",
            "langsmith.trace.name": "ishaan-test-generation",
            "langsmith.span.kind": "llm",
            **COMMON,
            "gen_ai.usage.details.reasoning_tokens": 10,
            "langsmith.metadata.team_alias": "search",
            "langsmith.metadata.key_alias": "ci",
            "langsmith.metadata.user_id": "user-id2",
            "langsmith.span.tags": "prod,beta",
            "langsmith.metadata.generation_id": "gen-id22",
            "langsmith.metadata.trace_id": "trace-id22",
            "langsmith.metadata.session_id": "sess-1",  # LangSmith's threads key, not its session (project)
            "langsmith.metadata.attempt": 2,
        },
        name="ishaan-test-generation",
        parent_span_id=PARENT_HEX,  # the span stays where the gateway put it: LangSmith nests by OTel ids
        resource={"service.name": "spangate", sc.TEAM_ID: "team-a", sc.TEAM_ALIAS: "search"},
    )


def test_stream_without_metadata_takes_the_openai_user_as_user_id():
    span = gateway_span({**CHAT, sc.REQUEST_STREAM: True, sc.RESPONSE_TIME_TO_FIRST_CHUNK: 0.25,
                         sc.END_USER: "u-7"})
    assert decode_one(span) == expected({
        sc.TEAM_ID: "team-a", **CHAT, sc.REQUEST_STREAM: True, sc.RESPONSE_TIME_TO_FIRST_CHUNK: 0.25,
        sc.END_USER: "u-7", "langsmith.trace.name": "chat gpt-4o", "langsmith.span.kind": "llm", **COMMON,
        "langsmith.metadata.user_id": "u-7",
    })


def test_embedding_is_an_embedding_run_and_azure_is_lang_smiths_azure():
    attributes = {sc.OPERATION_NAME: sc.OP_EMBEDDINGS, sc.PROVIDER_NAME: sc.PROVIDER_AZURE,
                  sc.REQUEST_MODEL: "text-embedding-3-small", sc.USAGE_INPUT_TOKENS: 8}
    span = gateway_span(attributes, name="embeddings text-embedding-3-small")
    assert decode_one(span) == expected({
        sc.TEAM_ID: "team-a", **attributes, "langsmith.trace.name": "embeddings text-embedding-3-small",
        "langsmith.span.kind": "embedding", "langsmith.metadata.team_id": "team-a", "gen_ai.system": "azure",
        "langsmith.metadata.ls_model_name": "text-embedding-3-small", "gen_ai.usage.total_tokens": 8,
    }, name="embeddings text-embedding-3-small")


def test_failed_call_gets_an_exception_event_so_the_run_is_an_error():
    attributes = {sc.OPERATION_NAME: sc.OP_CHAT, sc.REQUEST_MODEL: "gpt-4o", sc.ERROR_TYPE: "rate_limit_exceeded",
                  sc.HTTP_STATUS_CODE: 429}
    span = gateway_span(attributes, status=Status(StatusCode.ERROR, "rate limited"))
    assert decode_one(span) == expected(
        {sc.TEAM_ID: "team-a", **attributes, "langsmith.trace.name": "chat gpt-4o", "langsmith.span.kind": "llm",
         "langsmith.metadata.team_id": "team-a", "langsmith.metadata.ls_model_name": "gpt-4o"},
        status={"code": "ERROR", "message": "rate limited"},
        events=[{"name": "exception", "attributes": {"exception.type": "rate_limit_exceeded",
                                                      "exception.message": "rate limited"}}],
    )


def test_an_exception_event_already_there_is_not_doubled():
    recorded = Event("exception", {"exception.type": "ReadTimeout", "exception.message": "upstream"}, timestamp=END)
    base = gateway_span({sc.OPERATION_NAME: sc.OP_CHAT}, status=Status(StatusCode.ERROR))
    span = ReadableSpan(name=base.name, context=base.get_span_context(), resource=base.resource,
                        attributes=base.attributes, events=(recorded,), status=base.status,
                        start_time=base.start_time, end_time=base.end_time)
    assert [e.name for e in to_langsmith_span(span).events] == ["exception"]


def test_missing_usage_and_model_add_no_totals_and_the_key_hash_never_leaves():
    span = gateway_span({sc.OPERATION_NAME: sc.OP_CHAT}, metadata={"tags": "single", "empty": None})
    decoded = decode_one(span)
    assert decoded["attributes"] == {
        sc.TEAM_ID: "team-a", sc.OPERATION_NAME: sc.OP_CHAT, "langsmith.trace.name": "chat gpt-4o",
        "langsmith.span.kind": "llm", "langsmith.metadata.team_id": "team-a", "langsmith.span.tags": "single",
    }
    assert sc.KEY_HASH in span.attributes  # the original span other destinations share is untouched
    assert sc.metadata_key("tags") in span.attributes


def test_a_batch_keeps_its_order():
    spans = [gateway_span(CHAT, metadata={"generation_name": f"g{i}"}) for i in range(3)]
    assert [s["name"] for s in decode_otlp_traces(encode_langsmith(spans))] == ["g0", "g1", "g2"]
