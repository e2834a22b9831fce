"""encode_single / encode_json_array / encode_ndjson on hand-built gateway spans, as whole payloads."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.trace import Status, StatusCode

from contracts import semconv as sc
from exporters.generic.encode import encode_json_array, encode_ndjson, encode_single
from tests.support.readable_spans import CHAT_ERROR, SPAN_HEX, TRACE_HEX, error_span, span

CONTEXT = {sc.TEAM_ID: "team-a", sc.TEAM_ALIAS: "search", sc.KEY_ALIAS: "ci-key", sc.KEY_HASH: "9f86d081884c7d65",
           sc.REQUESTER_IP: "10.1.2.3"}
CHAT = {
    **CONTEXT, sc.OPERATION_NAME: sc.OP_CHAT, sc.CALL_TYPE: "acompletion", sc.REQUEST_MODEL: "gpt-3.5-turbo",
    sc.RESPONSE_MODEL: "gpt-3.5-turbo-0613", sc.RESPONSE_ID: "chatcmpl-8sgE89", sc.END_USER: "ishaan-2",
    sc.REQUEST_TEMPERATURE: 0.7, sc.REQUEST_MAX_TOKENS: 10, sc.USAGE_INPUT_TOKENS: 11, sc.USAGE_OUTPUT_TOKENS: 10,
    sc.USAGE_COST: 3.65e-05, sc.RESPONSE_FINISH_REASONS: ("length",),
    sc.INPUT_MESSAGES: '[{"role":"user","parts":[{"type":"text","content":"This is a test"}]}]',
    sc.OUTPUT_MESSAGES: '[{"role":"assistant","parts":[{"type":"text","content":"Great! How can I assist you"}],'
                        '"finish_reason":"length"}]',
    sc.metadata_key("generation_name"): "gen-1", sc.metadata_key("tags"): ("a", "b"),
}
USAGE = {"prompt_tokens": 11, "completion_tokens": 10, "total_tokens": 21}
TIMES = {"startTime": "2026-01-01 00:00:00.000000", "endTime": "2026-01-01 00:00:01.250000"}
TEAM = {"team_id": "team-a", "team_alias": "search", "key_alias": "ci-key"}


def decoded(attrs: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return json.loads(encode_single(span(attrs, **kw)))


def test_chat_is_the_seed_record_with_json_values():
    assert decoded(CHAT) == {"data": {
        "id": "chatcmpl-8sgE89", "call_type": "acompletion", "cache_hit": None, **TIMES,
        "model": "gpt-3.5-turbo", "user": "ishaan-2",
        "modelParameters": {"temperature": 0.7, "max_tokens": 10, "user": "ishaan-2"},
        "messages": [{"role": "user", "content": "This is a test"}],
        "response": {"id": "chatcmpl-8sgE89", "object": "chat.completion", "created": 1767225600,
                     "model": "gpt-3.5-turbo-0613",
                     "choices": [{"index": 0, "finish_reason": "length",
                                  "message": {"role": "assistant", "content": "Great! How can I assist you"}}],
                     "usage": USAGE},
        "usage": USAGE, "metadata": {"generation_name": "gen-1", "tags": ["a", "b"]}, "cost": 3.65e-05,
        "status": "success", "error": None, **TEAM, "trace_id": TRACE_HEX, "span_id": SPAN_HEX,
    }}


def test_no_secret_or_client_address_in_the_record():
    text = encode_single(span(CHAT)).decode()
    assert "9f86d081884c7d65" not in text and "10.1.2.3" not in text


def test_stream_keeps_its_parameters_and_usage_details():
    attrs = {**CHAT, sc.REQUEST_STREAM: True, sc.RESPONSE_TIME_TO_FIRST_CHUNK: 0.2,
             sc.REQUEST_STOP_SEQUENCES: ("\n",), sc.USAGE_CACHE_READ_INPUT_TOKENS: 4,
             sc.USAGE_REASONING_OUTPUT_TOKENS: 3, sc.STREAM_OUTCOME: sc.STREAM_COMPLETED}
    data = decoded(attrs)["data"]
    assert data["modelParameters"] == {"temperature": 0.7, "max_tokens": 10, "stream": True, "stop": ["\n"],
                                       "user": "ishaan-2"}
    assert data["usage"] == {**USAGE, "prompt_tokens_details": {"cached_tokens": 4},
                             "completion_tokens_details": {"reasoning_tokens": 3}}


def test_embedding_has_its_input_and_no_vectors():
    attrs = {**CONTEXT, sc.OPERATION_NAME: sc.OP_EMBEDDINGS, sc.CALL_TYPE: "aembedding",
             sc.REQUEST_MODEL: "text-embedding-3-small", sc.RESPONSE_MODEL: "text-embedding-3-small",
             sc.REQUEST_ENCODING_FORMATS: ("float",), sc.USAGE_INPUT_TOKENS: 5, sc.EMBEDDINGS_DIMENSION_COUNT: 1536,
             sc.INPUT_MESSAGES: '[{"role":"user","parts":[{"type":"text","content":"hello"}]}]'}
    data = decoded(attrs, name="embeddings text-embedding-3-small")["data"]
    assert data["id"] == SPAN_HEX  # no response id on embeddings answers
    assert (data["call_type"], data["messages"], data["modelParameters"]) == ("aembedding", "hello",
                                                                             {"encoding_format": "float"})
    usage = {"prompt_tokens": 5, "completion_tokens": 0, "total_tokens": 5}
    assert data["response"] == {"id": None, "object": "list", "created": 1767225600,
                                "model": "text-embedding-3-small", "usage": usage}


def test_error_says_failure_with_the_error_the_client_got():
    data = json.loads(encode_single(error_span({**CONTEXT, **CHAT_ERROR, sc.CALL_TYPE: "acompletion"})))["data"]
    assert data == {
        "id": SPAN_HEX, "call_type": "acompletion", "cache_hit": None, **TIMES, "model": "gpt-4o-mini",
        "user": None, "modelParameters": {}, "messages": None, "response": None, "usage": None, "metadata": {},
        "cost": None, "status": "failure",
        "error": {"type": "rate_limit_exceeded", "message": "rate limited", "status_code": 429},
        **TEAM, "trace_id": TRACE_HEX, "span_id": SPAN_HEX,
    }


def test_missing_usage_and_content_are_null_not_invented():
    attrs = {k: v for k, v in CHAT.items()
             if k not in (sc.USAGE_INPUT_TOKENS, sc.USAGE_OUTPUT_TOKENS, sc.USAGE_COST, sc.INPUT_MESSAGES,
                          sc.OUTPUT_MESSAGES)}
    data = decoded(attrs, status=Status(StatusCode.UNSET))["data"]
    assert (data["usage"], data["cost"], data["messages"], data["status"]) == (None, None, None, "success")
    assert data["response"] == {"id": "chatcmpl-8sgE89", "object": "chat.completion", "created": 1767225600,
                                "model": "gpt-3.5-turbo-0613", "usage": None}


def test_batches_frame_the_same_records():
    spans = [span(CHAT), span(CHAT, span_id=0x1234)]
    singles = [json.loads(encode_single(s)) for s in spans]
    assert json.loads(encode_json_array(spans)) == singles
    ndjson = encode_ndjson(spans)
    assert ndjson.endswith(b"\n") and ndjson.count(b"\n") == 2
    assert [json.loads(line) for line in ndjson.splitlines()] == singles
    assert singles[1]["data"]["span_id"] == "0000000000001234"
