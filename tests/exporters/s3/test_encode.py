"""encode_s3 and the call record on hand-built spans, checked as whole objects."""

from __future__ import annotations

import gzip
import json
from typing import Any

from contracts import semconv as sc
from exporters.encode.call_record import call_record
from exporters.s3.encode import S3Object, encode_s3
from tests.support.readable_spans import CHAT_ERROR, CHAT_OK, SPAN_HEX, START, TRACE_HEX, error_span, span

CALL_ID = f"{TRACE_HEX}-{SPAN_HEX}"
PARTITION = "dt=2026-01-01/hour=00/"
MESSAGES = '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]'
ANSWER = '[{"role":"assistant","parts":[{"type":"text","content":"hello"}],"finish_reason":"stop"}]'
CALLER = {sc.TEAM_ID: "team-a", sc.TEAM_ALIAS: "Team A", sc.KEY_ALIAS: "ci", sc.KEY_HASH: "9f86d081884c7d65",
          sc.CALL_TYPE: "acompletion", sc.MODEL_GROUP: "gpt-4o-mini", sc.DEPLOYMENT_ID: "dep-1"}


def record(**fields: Any) -> dict[str, Any]:
    """The record of ``CHAT_OK`` plus the caller, with ``fields`` changed."""
    return {
        "id": CALL_ID, "trace_id": TRACE_HEX, "span_id": SPAN_HEX, "call_type": "acompletion", "status": "success",
        "startTime": "2026-01-01T00:00:00.000000Z", "endTime": "2026-01-01T00:00:01.250000Z",
        "completionStartTime": None, "model": "gpt-4o-mini", "model_group": "gpt-4o-mini", "model_id": "dep-1",
        "response_model": "gpt-4o-mini-2024-07-18", "custom_llm_provider": "openai", "response_id": None,
        "stream": False, "messages": None, "system_instructions": None, "response": None, "modelParameters": {},
        "usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}, "response_cost": 0.0000198,
        "user": None, "team_id": "team-a", "team_alias": "Team A", "key_alias": "ci", "metadata": {}, "error": None,
        **fields,
    }


def one_object(attributes: dict[str, Any], path: str = "logs") -> tuple[S3Object, dict[str, Any]]:
    [obj] = encode_s3([span(attributes)], path)
    return obj, json.loads(obj.body)


def test_chat_with_content_parameters_and_metadata_is_one_json_object_under_its_partition() -> None:
    attrs = {**CHAT_OK, **CALLER, sc.INPUT_MESSAGES: MESSAGES, sc.OUTPUT_MESSAGES: ANSWER,
             sc.REQUEST_TEMPERATURE: 0.7, sc.REQUEST_MAX_TOKENS: 100, sc.REQUEST_STOP_SEQUENCES: ("\n",),
             sc.END_USER: "ishaan-2", sc.RESPONSE_ID: "chatcmpl-1", sc.USAGE_CACHE_READ_INPUT_TOKENS: 4,
             sc.metadata_key("generation_name"): "gen", sc.metadata_key("tags"): ("a", "b"),
             sc.metadata_key("extra"): '{"k":1}'}
    obj, body = one_object(attrs)
    assert (obj.key, obj.content_type, obj.content_encoding) == (
        f"logs/team=team-a/{PARTITION}{CALL_ID}.json", "application/json", None)
    assert body == record(
        messages=[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}],
        response=[{"role": "assistant", "parts": [{"type": "text", "content": "hello"}], "finish_reason": "stop"}],
        modelParameters={"temperature": 0.7, "max_tokens": 100, "stop": ["\n"]}, user="ishaan-2",
        response_id="chatcmpl-1", usage={"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42,
                                         "cached_tokens": 4},
        metadata={"generation_name": "gen", "tags": ["a", "b"], "extra": {"k": 1}})
    assert "9f86d081884c7d65" not in obj.body.decode()  # the key hash never leaves the gateway


def test_stream_records_its_first_chunk_time() -> None:
    _obj, body = one_object({**CHAT_OK, **CALLER, sc.REQUEST_STREAM: True, sc.RESPONSE_TIME_TO_FIRST_CHUNK: 0.25})
    assert body == record(stream=True, completionStartTime="2026-01-01T00:00:00.250000Z")


def test_embedding_and_missing_usage() -> None:
    attrs = {sc.OPERATION_NAME: sc.OP_EMBEDDINGS, sc.CALL_TYPE: "aembedding", sc.REQUEST_MODEL: "emb",
             sc.TEAM_ID: "team-a", sc.INPUT_MESSAGES: '[{"role":"user","parts":[{"type":"text","content":"x"}]}]'}
    _obj, body = one_object(attrs)
    assert body == {**{k: None for k in record()}, "id": CALL_ID, "trace_id": TRACE_HEX, "span_id": SPAN_HEX,
                    "call_type": "aembedding", "status": "success", "startTime": "2026-01-01T00:00:00.000000Z",
                    "endTime": "2026-01-01T00:00:01.250000Z", "model": "emb", "stream": False,
                    "messages": [{"role": "user", "parts": [{"type": "text", "content": "x"}]}],
                    "modelParameters": {}, "team_id": "team-a", "metadata": {}}


def test_error_records_type_message_and_status() -> None:
    body = call_record(error_span({**CHAT_ERROR, sc.TEAM_ID: "team-a"}))
    assert (body["status"], body["error"], body["usage"]) == (
        "failure", {"type": "rate_limit_exceeded", "message": "rate limited", "status_code": 429}, None)


def test_team_ids_are_percent_encoded_and_no_team_is_hives_null_partition() -> None:
    assert one_object({**CHAT_OK, sc.TEAM_ID: "a/b c"}, "")[0].key == f"team=a%2Fb%20c/{PARTITION}{CALL_ID}.json"
    assert one_object(CHAT_OK, "")[0].key == f"team=__HIVE_DEFAULT_PARTITION__/{PARTITION}{CALL_ID}.json"


def test_ndjson_writes_one_gzipped_object_per_partition_and_the_same_key_for_the_same_calls() -> None:
    spans = [span({**CHAT_OK, sc.TEAM_ID: "a"}, span_id=1), span({**CHAT_OK, sc.TEAM_ID: "b"}, span_id=2),
             error_span({**CHAT_ERROR, sc.TEAM_ID: "a"})]
    objects = encode_s3(spans, "arch", "ndjson")
    assert [(o.key.rsplit("/", 1)[0], o.content_type, o.content_encoding) for o in objects] == [
        (f"arch/team=a/{PARTITION}".rstrip("/"), "application/x-ndjson", "gzip"),
        (f"arch/team=b/{PARTITION}".rstrip("/"), "application/x-ndjson", "gzip")]
    assert objects[0].key.endswith(".ndjson.gz") and objects[0].key.split("/")[-1].startswith(
        f"{TRACE_HEX}-{1:016x}-")
    lines = gzip.decompress(objects[0].body).decode().splitlines()
    assert [json.loads(line) for line in lines] == [call_record(spans[0]), call_record(spans[2])]
    assert encode_s3(spans, "arch", "ndjson") == objects  # a retried batch overwrites its own objects
    assert encode_s3(spans[:1], "arch", "ndjson")[0].key != objects[0].key  # other calls, other object


def test_partition_follows_the_start_hour_in_utc() -> None:
    late = span(CHAT_OK)
    object.__setattr__(late, "_start_time", START + (26 * 3600 + 5) * 10**9)
    assert encode_s3([late], "")[0].key.startswith("team=__HIVE_DEFAULT_PARTITION__/dt=2026-01-02/hour=02/")
