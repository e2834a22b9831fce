"""encode_sentry on hand-built spans: whole events for chat, stream and embedding failures; successes skipped."""

from __future__ import annotations

from opentelemetry.trace import Status, StatusCode

from contracts import semconv as sc
from exporters.sentry_events.encode import encode_sentry, event_id, startup_event
from tests.support.readable_spans import CHAT_ERROR, CHAT_OK, PARENT_HEX, SPAN_HEX, TRACE_HEX, error_span, span

EVENT_ID = SPAN_HEX + TRACE_HEX[16:]
PROXY = {sc.TEAM_ID: "team-a", sc.TEAM_ALIAS: "Team A", sc.KEY_ALIAS: "ci-key", sc.KEY_HASH: "ab" * 32,
         sc.MODEL_GROUP: "gpt-4o-mini", sc.CALL_TYPE: "acompletion", sc.END_USER: "user-7",
         sc.metadata_key("job"): "nightly", sc.metadata_key("tags"): ("a", "b")}


def failed(attributes, message="upstream failed", **kwargs):
    return span(attributes, status=Status(StatusCode.ERROR, message), **kwargs)


def test_a_failed_chat_is_one_whole_event():
    (event,) = encode_sentry([failed({**CHAT_ERROR, **PROXY}, "Rate limit reached for gpt-4o-mini", parent=True)])
    assert event == {
        "event_id": EVENT_ID,
        "level": "error",
        "logger": "spangate",
        "transaction": "chat gpt-4o-mini",
        "timestamp": "2026-01-01T00:00:01.250000Z",
        "exception": {"values": [{"type": "rate_limit_exceeded", "value": "Rate limit reached for gpt-4o-mini",
                                  "mechanism": {"type": "spangate", "handled": True}}]},
        "fingerprint": ["spangate", "rate_limit_exceeded", "gpt-4o-mini"],
        "tags": {"model": "gpt-4o-mini", "operation": "chat", "team_id": "team-a", "team_alias": "Team A",
                 "key_alias": "ci-key", "error_type": "rate_limit_exceeded", "http_status": "429"},
        "contexts": {
            "trace": {"trace_id": TRACE_HEX, "span_id": SPAN_HEX, "parent_span_id": PARENT_HEX, "op": "gen_ai.chat",
                      "status": "resource_exhausted"},
            "llm": {"operation": "chat", "request_model": "gpt-4o-mini"},
            "spangate": {"team_id": "team-a", "team_alias": "Team A", "key_alias": "ci-key",
                         "model_group": "gpt-4o-mini", "call_type": "acompletion", "http_status": 429,
                         "metadata": {"job": "nightly", "tags": ["a", "b"]}, "duration_ms": 1250.0},
        },
        "user": {"id": "user-7"},
    }
    assert "ab" * 32 not in repr(event)


def test_a_stream_that_failed_midway_keeps_its_usage_and_outcome():
    attributes = {**CHAT_OK, sc.REQUEST_STREAM: True, sc.STREAM_OUTCOME: sc.STREAM_UPSTREAM_ERROR,
                  sc.ERROR_TYPE: "upstream_error", sc.HTTP_STATUS_CODE: 502}
    (event,) = encode_sentry([failed(attributes, "upstream closed the stream")])
    assert event["contexts"]["llm"] == {
        "operation": "chat", "provider": "openai", "request_model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini-2024-07-18", "stream": True, "stream_outcome": "upstream_error",
        "input_tokens": 12, "output_tokens": 30, "cost": 0.0000198}
    assert event["contexts"]["trace"]["status"] == "internal_error"
    assert event["exception"]["values"][0]["value"] == "upstream closed the stream"


def test_a_failed_embedding_is_filed_under_the_embeddings_op():
    attributes = {sc.OPERATION_NAME: sc.OP_EMBEDDINGS, sc.REQUEST_MODEL: "text-embedding-3-small",
                  sc.ERROR_TYPE: "timeout", sc.HTTP_STATUS_CODE: 504}
    (event,) = encode_sentry([failed(attributes, "upstream timed out", name="embeddings text-embedding-3-small")])
    assert event["contexts"]["trace"] | {"trace_id": "", "span_id": ""} == {
        "trace_id": "", "span_id": "", "op": "gen_ai.embeddings", "status": "deadline_exceeded"}
    assert event["fingerprint"] == ["spangate", "timeout", "text-embedding-3-small"]
    assert event["transaction"] == "embeddings text-embedding-3-small"


def test_missing_usage_type_and_message_still_make_an_event():
    (event,) = encode_sentry([failed({sc.OPERATION_NAME: sc.OP_CHAT}, "")])
    assert event["exception"]["values"][0] | {"mechanism": None} == {"type": "error", "value": "error",
                                                                     "mechanism": None}
    assert event["fingerprint"] == ["spangate", "error", "unknown"]
    assert event["tags"] == {"operation": "chat"}
    assert event["contexts"]["llm"] == {"operation": "chat"}
    assert "user" not in event


def test_successful_spans_send_nothing_and_ids_follow_the_span():
    first, second = error_span(), error_span()
    assert encode_sentry([span(CHAT_OK)]) == []
    assert [e["event_id"] for e in encode_sentry([first, span(CHAT_OK), second])] == [event_id(first)] * 2
    other = span(CHAT_ERROR, status=Status(StatusCode.ERROR), span_id=0x1234)
    assert event_id(other) == "0000000000001234" + TRACE_HEX[16:]


def test_long_tag_values_are_cut_to_what_sentry_keeps():
    (event,) = encode_sentry([failed({**CHAT_ERROR, sc.KEY_ALIAS: "k" * 300})])
    assert event["tags"]["key_alias"] == "k" * 200
    assert event["contexts"]["spangate"]["key_alias"] == "k" * 300


def test_the_admin_test_span_is_an_info_event_so_the_test_reaches_sentry():
    (event,) = encode_sentry([span({sc.OPERATION_NAME: sc.OP_CHAT, sc.REQUEST_MODEL: "spangate-callback-test",
                                    sc.SYNTHETIC: True, sc.TEAM_ID: "t"}, name="chat spangate-callback-test")])
    assert {k: event[k] for k in ("level", "message", "fingerprint", "tags")} == {
        "level": "info", "message": {"formatted": "spangate callback test: chat spangate-callback-test"},
        "fingerprint": ["spangate", "callback-test"],
        "tags": {"model": "spangate-callback-test", "operation": "chat", "team_id": "t"}}
    assert "exception" not in event


def test_a_start_up_failure_event():
    assert startup_event("ConfigError", "spangate: config error: x") == {
        "level": "fatal", "logger": "spangate", "transaction": "startup",
        "exception": {"values": [{"type": "ConfigError", "value": "spangate: config error: x",
                                  "mechanism": {"type": "spangate", "handled": False}}]},
        "fingerprint": ["spangate", "startup", "ConfigError"], "tags": {"phase": "startup"}}
