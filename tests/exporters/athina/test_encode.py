"""athina_record on hand-built gateway spans, as whole payloads."""

from __future__ import annotations

import json

from opentelemetry.trace import Status, StatusCode

from contracts import semconv as sc
from exporters.athina.encode import athina_record, encode_athina
from tests.exporters.generic.test_encode import CHAT, CONTEXT, USAGE
from tests.support.readable_spans import CHAT_ERROR, SPAN_HEX, TRACE_HEX, error_span, span

GATEWAY = {"team_id": "team-a", "team_alias": "search", "key_alias": "ci-key", "trace_id": TRACE_HEX,
           "span_id": SPAN_HEX}
RESPONSE = {"id": "chatcmpl-8sgE89", "object": "chat.completion", "created": 1767225600, "model": "gpt-3.5-turbo-0613",
            "choices": [{"index": 0, "finish_reason": "length",
                         "message": {"role": "assistant", "content": "Great! How can I assist you"}}],
            "usage": USAGE}


def test_chat_has_the_required_fields_usage_and_defaults():
    assert json.loads(encode_athina(span(CHAT))) == {
        "language_model_id": "gpt-3.5-turbo", "prompt": [{"role": "user", "content": "This is a test"}],
        "response": RESPONSE, **USAGE, "cost": 3.65e-05, "response_time": 1250, "status_code": 200,
        "tags": ["a", "b"], "customer_user_id": "ishaan-2", "user_query": "This is a test",
        "external_reference_id": SPAN_HEX, "custom_attributes": {"generation_name": "gen-1", **GATEWAY},
    }


def test_metadata_athina_fields_pass_through_and_win_over_defaults():
    metadata = {"environment": "prod", "prompt_slug": "qa", "customer_id": "acme", "customer_user_id": "u9",
                "session_id": "s1", "external_reference_id": "ref-1", "user_query": "q?",
                "context": '{"doc": "d1"}', "custom_attributes": '{"team_id": "mine", "x": 1}'}
    record = athina_record(span({**CHAT, **{sc.metadata_key(k): v for k, v in metadata.items()}}))
    assert {k: record[k] for k in metadata} == {**metadata, "context": {"doc": "d1"},
                                                "custom_attributes": {"generation_name": "gen-1", **GATEWAY,
                                                                      "team_id": "mine", "x": 1}}


def test_stream_and_embedding():
    stream = athina_record(span({**CHAT, sc.REQUEST_STREAM: True, sc.RESPONSE_TIME_TO_FIRST_CHUNK: 0.1}))
    assert stream["response"] == RESPONSE
    embedding = athina_record(span({**CONTEXT, sc.OPERATION_NAME: sc.OP_EMBEDDINGS, sc.REQUEST_MODEL: "te-3",
                                    sc.USAGE_INPUT_TOKENS: 5,
                                    sc.INPUT_MESSAGES: '[{"role":"user","parts":[{"type":"text","content":"a"},'
                                                       '{"type":"text","content":"b"}]}]'}))
    assert (embedding["prompt"], embedding["response"], embedding["total_tokens"]) == (["a", "b"], "", 5)


def test_error_carries_status_and_message():
    assert athina_record(error_span({**CONTEXT, **CHAT_ERROR})) == {
        "language_model_id": "gpt-4o-mini", "prompt": "", "response": "", "response_time": 1250,
        "status_code": 429, "error": "rate limited", "external_reference_id": SPAN_HEX,
        "custom_attributes": GATEWAY,
    }


def test_missing_usage_and_content_leave_the_fields_out():
    attrs = {sc.OPERATION_NAME: sc.OP_CHAT, sc.REQUEST_MODEL: "m"}
    assert athina_record(span(attrs, status=Status(StatusCode.UNSET))) == {
        "language_model_id": "m", "prompt": "", "response": "", "response_time": 1250, "status_code": 200,
        "external_reference_id": SPAN_HEX, "custom_attributes": {"trace_id": TRACE_HEX, "span_id": SPAN_HEX},
    }


def test_no_key_hash_or_client_address():
    text = encode_athina(span(CHAT)).decode()
    assert "9f86d081884c7d65" not in text and "10.1.2.3" not in text
