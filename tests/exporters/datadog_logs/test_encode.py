"""encode_datadog on hand-built spans: whole log items, tags, chunking and the per-log size cap."""

from __future__ import annotations

import json

from opentelemetry.sdk.trace import ReadableSpan

from contracts import semconv as sc
from exporters.datadog_logs.encode import (
    MAX_LOG_BYTES,
    MAX_LOGS_PER_REQUEST,
    MAX_REQUEST_BYTES,
    LogLabels,
    encode_datadog,
    to_log_item,
)
from tests.support.readable_spans import CHAT_ERROR, CHAT_OK, SPAN_HEX, TRACE_HEX, error_span, span

LABELS = LogLabels(source="spangate", service="gw", env="prod")
TEAM = {sc.TEAM_ID: "team-a", sc.TEAM_ALIAS: "Team A", sc.KEY_ALIAS: "ci", sc.KEY_HASH: "ab" * 32}
IDS = {"trace_id": TRACE_HEX, "span_id": SPAN_HEX,
       "dd": {"trace_id": str(int(TRACE_HEX, 16) & (2**64 - 1)), "span_id": str(int(SPAN_HEX, 16))}}
COMMON = {"ddsource": "spangate", "service": "gw", "date": 1_767_225_600_000, "duration": 1_250_000_000, **IDS}
SPANGATE = {"team": {"id": "team-a", "alias": "Team A"}, "key": {"alias": "ci"}}


def item(s: ReadableSpan, labels: LogLabels = LABELS) -> dict:
    return to_log_item(s, labels)


def test_chat():
    assert item(span({**CHAT_OK, **TEAM, sc.metadata_key("run"): "r1"})) == {
        **COMMON,
        "ddtags": "env:prod,team:team-a,model:gpt-4o-mini-2024-07-18",
        "status": "info",
        "message": "chat gpt-4o-mini",
        "gen_ai": {
            "operation": {"name": "chat"}, "provider": {"name": "openai"},
            "request": {"model": "gpt-4o-mini"},
            "response": {"model": "gpt-4o-mini-2024-07-18", "finish_reasons": ["stop"]},
            "usage": {"input_tokens": 12, "output_tokens": 30, "cost": 0.0000198},
        },
        "spangate": {**SPANGATE, "metadata": {"run": "r1"}},
    }


def test_stream_with_captured_content():
    attributes = {**CHAT_OK, sc.REQUEST_STREAM: True, sc.RESPONSE_TIME_TO_FIRST_CHUNK: 0.25,
                  sc.STREAM_OUTCOME: sc.STREAM_COMPLETED, sc.INPUT_MESSAGES: '[{"role":"user"}]',
                  sc.USAGE_CACHE_READ_INPUT_TOKENS: 4}
    got = item(span(attributes))
    assert got["gen_ai"]["request"] == {"model": "gpt-4o-mini", "stream": True}
    assert got["gen_ai"]["response"]["time_to_first_chunk"] == 0.25
    assert got["gen_ai"]["input"] == {"messages": '[{"role":"user"}]'}
    assert got["gen_ai"]["usage"]["cache_read"] == {"input_tokens": 4}
    assert got["spangate"] == {"stream": {"outcome": "completed"}}
    assert (got["status"], got["ddtags"]) == ("info", "env:prod,model:gpt-4o-mini-2024-07-18")


def test_embedding_without_usage_or_env():
    attributes = {sc.OPERATION_NAME: sc.OP_EMBEDDINGS, sc.REQUEST_MODEL: "text-embedding-3-small",
                  sc.EMBEDDINGS_DIMENSION_COUNT: 1536}
    got = item(span(attributes, name="embeddings text-embedding-3-small"), LogLabels("spangate", "gw"))
    assert got == {
        **COMMON, "ddtags": "model:text-embedding-3-small", "status": "info",
        "message": "embeddings text-embedding-3-small",
        "gen_ai": {"operation": {"name": "embeddings"}, "request": {"model": "text-embedding-3-small"},
                   "embeddings": {"dimension": {"count": 1536}}},
    }


def test_error():
    assert item(error_span({**CHAT_ERROR, sc.TEAM_ID: "team-a"})) == {
        **COMMON,
        "ddtags": "env:prod,team:team-a,model:gpt-4o-mini",
        "status": "error",
        "message": "chat gpt-4o-mini failed: rate_limit_exceeded: rate limited",
        "error": {"kind": "rate_limit_exceeded", "message": "rate limited", "type": "rate_limit_exceeded"},
        "gen_ai": {"operation": {"name": "chat"}, "request": {"model": "gpt-4o-mini"}},
        "http": {"response": {"status_code": 429}},
        "spangate": {"team": {"id": "team-a"}},
    }


def test_missing_usage_and_model_send_what_there_is():
    got = item(span({sc.OPERATION_NAME: sc.OP_CHAT}, name="chat"))
    assert got == {**COMMON, "ddtags": "env:prod", "status": "info", "message": "chat",
                   "gen_ai": {"operation": {"name": "chat"}}}


def test_key_hash_is_never_sent():
    assert "ab" * 32 not in json.dumps(item(span({**CHAT_OK, **TEAM})))


def test_tag_values_cannot_add_tags():
    got = item(span({sc.TEAM_ID: "a,b:c d", sc.REQUEST_MODEL: "m" * 300}))
    assert got["ddtags"] == "env:prod,team:a_b:c_d,model:" + "m" * 200


def test_a_metadata_key_that_collides_with_a_path_stays_flat():
    got = item(span({sc.metadata_key("a"): 1, sc.metadata_key("a.b"): 2}))
    assert got["spangate"] == {"metadata": {"a": 1}}
    assert got[sc.metadata_key("a.b")] == 2


def test_batches_are_cut_at_1000_logs():
    spans = [span(CHAT_OK, span_id=i + 1) for i in range(MAX_LOGS_PER_REQUEST * 2 + 1)]
    chunks = encode_datadog(spans, LABELS)
    assert [len(c) for c in chunks] == [1000, 1000, 1]
    assert [log["span_id"] for c in chunks for log in c] == [format(i + 1, "016x") for i in range(len(spans))]


def test_batches_are_cut_under_5_mb_as_the_client_serialises_them():
    big = {**CHAT_OK, sc.OUTPUT_MESSAGES: "x" * 900_000}
    chunks = encode_datadog([span(big, span_id=i + 1) for i in range(12)], LABELS)
    assert [len(c) for c in chunks] == [5, 5, 2]
    assert all(len(json.dumps(c)) <= MAX_REQUEST_BYTES for c in chunks)


def test_a_log_over_1_mb_has_its_largest_content_cut_and_says_so():
    attributes = {**CHAT_OK, sc.INPUT_MESSAGES: "i" * 400_000, sc.OUTPUT_MESSAGES: "é" * 500_000}
    got = item(span(attributes))
    size = len(json.dumps(got))
    assert MAX_LOG_BYTES - 200 <= size <= MAX_LOG_BYTES
    assert got["gen_ai"]["input"]["messages"] == "i" * 400_000  # the largest one, in JSON bytes too, is cut
    assert set(got["gen_ai"]["output"]["messages"]) == {"é"}
    assert got["spangate"] == {"content": {"truncated": True}}


def test_encoding_is_pure():
    s = span({**CHAT_OK, **TEAM})
    assert encode_datadog([s], LABELS) == encode_datadog([s], LABELS) == [[item(s)]]
    assert dict(s.attributes)[sc.KEY_HASH] == "ab" * 32
