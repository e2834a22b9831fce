"""encode_dynamodb on hand-built spans: whole items, and the 400 KB limit."""

from __future__ import annotations

import json
from decimal import Decimal

from contracts import semconv as sc
from exporters.dynamodb.encode import MAX_ITEM_BYTES, encode_dynamodb, item_size
from tests.support.readable_spans import CHAT_ERROR, CHAT_OK, SPAN_HEX, TRACE_HEX, error_span, span

CALL_ID = f"{TRACE_HEX}-{SPAN_HEX}"
BASE = {"id": CALL_ID, "trace_id": TRACE_HEX, "span_id": SPAN_HEX, "startTime": "2026-01-01T00:00:00.000000Z",
        "endTime": "2026-01-01T00:00:01.250000Z", "stream": False, "metadata": "{}", "modelParameters": "{}"}


def test_chat_item_has_the_seed_fields_with_json_strings_and_decimal_numbers() -> None:
    attrs = {**CHAT_OK, sc.CALL_TYPE: "acompletion", sc.TEAM_ID: "team-a", sc.END_USER: "ishaan-2",
             sc.REQUEST_TEMPERATURE: 0.7, sc.REQUEST_MAX_TOKENS: 100, sc.KEY_HASH: "9f86d081884c7d65",
             sc.INPUT_MESSAGES: '[{"role":"user","parts":[{"type":"text","content":"This is a test"}]}]',
             sc.metadata_key("session_id"): "s-1"}
    encoded = encode_dynamodb([span(attrs)])
    assert encoded.truncated == 0
    assert encoded.items == [{
        **BASE, "call_type": "acompletion", "status": "success", "model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini-2024-07-18", "custom_llm_provider": "openai", "user": "ishaan-2",
        "team_id": "team-a", "response_cost": Decimal("0.0000198"),
        "messages": '[{"role":"user","parts":[{"type":"text","content":"This is a test"}]}]',
        "metadata": '{"session_id":"s-1"}', "modelParameters": '{"temperature":0.7,"max_tokens":100}',
        "usage": '{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42}',
        "prompt_tokens": Decimal(12), "completion_tokens": Decimal(30), "total_tokens": Decimal(42)}]


def test_stream_embedding_error_and_missing_usage() -> None:
    stream, embedding, error = encode_dynamodb([
        span({**CHAT_OK, sc.REQUEST_STREAM: True, sc.RESPONSE_TIME_TO_FIRST_CHUNK: 0.5}),
        span({sc.OPERATION_NAME: sc.OP_EMBEDDINGS, sc.CALL_TYPE: "aembedding", sc.REQUEST_MODEL: "emb"}),
        error_span(CHAT_ERROR)]).items
    assert (stream["stream"], stream["completionStartTime"]) == (True, "2026-01-01T00:00:00.500000Z")
    assert embedding == {**BASE, "call_type": "aembedding", "status": "success", "model": "emb"}
    assert error == {**BASE, "call_type": "chat", "status": "failure", "model": "gpt-4o-mini",
                     "error": '{"type":"rate_limit_exceeded","message":"rate limited","status_code":429}'}


def test_an_item_over_400_kb_has_its_largest_content_cut_with_a_json_marker_and_is_counted() -> None:
    text = "é" * 150_000 + '"quoted"'  # 300 KB of two-byte characters, and escapes in the JSON
    compact = {"separators": (",", ":"), "ensure_ascii": False}  # as the gateway writes content
    messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}], **compact)
    answer = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "b" * 150_000}]}], **compact)
    encoded = encode_dynamodb([span({**CHAT_OK, sc.INPUT_MESSAGES: messages, sc.OUTPUT_MESSAGES: answer}),
                               span(CHAT_OK, span_id=7)])
    big, small = encoded.items
    assert encoded.truncated == 1 and "truncated" not in small
    assert item_size(big) <= MAX_ITEM_BYTES < len(messages.encode()) + len(answer)
    assert big["truncated"] == ["messages"] and big["response"] == answer  # only as much as needed
    marker = json.loads(big["messages"])
    assert set(marker) == {"spangate_truncated", "original_bytes", "head"}
    assert marker["original_bytes"] == len(messages.encode()) and messages.startswith(marker["head"])
    assert len(marker["head"]) > 50_000
