"""Span attributes are pure functions of plain OpenAI bodies: whole-dict checks, no server."""

import json

from app.calls.attributes import (
    embeddings_attributes,
    input_content_attributes,
    metadata_attributes,
    output_content_attributes,
    request_attributes,
    response_attributes,
    span_name,
    usage_attributes,
)
from contracts import semconv as sc

CHAT_ANSWER = {
    "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"},
                {"index": 1, "message": {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}]},
                 "finish_reason": "tool_calls"}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29,
              "prompt_tokens_details": {"cached_tokens": 4, "cache_creation_tokens": 6},
              "completion_tokens_details": {"reasoning_tokens": 2}},
}


def test_span_name_is_operation_then_model() -> None:
    assert span_name(sc.OP_CHAT, "gpt-4o") == "chat gpt-4o"


def test_request_attributes_take_recommended_params_and_ignore_wrong_types() -> None:
    body = {"model": "m", "temperature": 1, "max_tokens": 100, "top_p": 0.5, "frequency_penalty": 0.1,
            "presence_penalty": -0.2, "seed": 7, "n": 2, "stop": "END", "stream": True,
            "user": "u", "logit_bias": {"1": 2}}
    assert request_attributes(body) == {
        sc.REQUEST_TEMPERATURE: 1.0, sc.REQUEST_MAX_TOKENS: 100, sc.REQUEST_TOP_P: 0.5,
        sc.REQUEST_FREQUENCY_PENALTY: 0.1, sc.REQUEST_PRESENCE_PENALTY: -0.2, sc.REQUEST_SEED: 7,
        sc.REQUEST_CHOICE_COUNT: 2, sc.REQUEST_STOP_SEQUENCES: ("END",), sc.REQUEST_STREAM: True,
    }
    assert isinstance(request_attributes(body)[sc.REQUEST_TEMPERATURE], float)
    assert request_attributes({"temperature": True, "stop": ["a", 1], "stream": False}) == {}
    assert request_attributes({"max_completion_tokens": 5, "stop": ["a", "b"], "encoding_format": "float"}) == {
        sc.REQUEST_MAX_TOKENS: 5, sc.REQUEST_STOP_SEQUENCES: ("a", "b"), sc.REQUEST_ENCODING_FORMATS: ("float",)}


def test_chat_response_attributes_include_usage_details() -> None:
    assert response_attributes(CHAT_ANSWER) == {
        sc.RESPONSE_ID: "chatcmpl-1", sc.RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        sc.RESPONSE_FINISH_REASONS: ("stop", "tool_calls"),
        sc.USAGE_INPUT_TOKENS: 20, sc.USAGE_OUTPUT_TOKENS: 9, sc.USAGE_CACHE_READ_INPUT_TOKENS: 4,
        sc.USAGE_CACHE_WRITE_INPUT_TOKENS: 6, sc.USAGE_REASONING_OUTPUT_TOKENS: 2,
    }


def test_missing_or_malformed_usage_records_no_token_attributes() -> None:
    answer = {"id": "x", "choices": [{"index": 0, "message": {"content": "a"}, "finish_reason": None}]}
    assert response_attributes(answer) == {sc.RESPONSE_ID: "x"}
    assert usage_attributes(None) == {}
    assert usage_attributes({"prompt_tokens": "3", "completion_tokens": True, "prompt_tokens_details": None}) == {}
    assert response_attributes({"choices": "nope", "usage": [], "model": 3}) == {}


def test_embeddings_attributes_count_dimensions_and_input_tokens() -> None:
    answer = {"object": "list", "model": "text-embedding-3-small",
              "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
              "usage": {"prompt_tokens": 5, "total_tokens": 5}}
    assert embeddings_attributes(answer) == {sc.RESPONSE_MODEL: "text-embedding-3-small",
                                             sc.EMBEDDINGS_DIMENSION_COUNT: 3, sc.USAGE_INPUT_TOKENS: 5}
    assert embeddings_attributes({"data": [], "model": "e"}) == {sc.RESPONSE_MODEL: "e"}


def test_metadata_keeps_scalars_and_string_lists_and_encodes_the_rest_as_json() -> None:
    metadata = {"generation_name": "greet", "trace_user_id": "u-1", "tags": ["a", "b"], "retries": 2,
                "nested": {"k": [1, 2]}, "mixed": [1, "x"], "skipped": None, "flag": False}
    assert metadata_attributes(metadata) == {
        sc.USER_ID: "u-1",  # under the general name too: see the next test
        "spangate.metadata.generation_name": "greet", "spangate.metadata.trace_user_id": "u-1",
        "spangate.metadata.tags": ("a", "b"), "spangate.metadata.retries": 2,
        "spangate.metadata.nested": '{"k":[1,2]}', "spangate.metadata.mixed": '[1,"x"]',
        "spangate.metadata.flag": False,
    }


def test_the_user_and_session_also_go_under_the_general_otel_names() -> None:
    attrs = metadata_attributes({"trace_user_id": "u-7", "session_id": "conv-9", "other": "x"})
    assert {k: v for k, v in attrs.items() if not k.startswith(sc.METADATA_PREFIX)} == {
        sc.USER_ID: "u-7", sc.SESSION_ID: "conv-9", sc.CONVERSATION_ID: "conv-9"}
    assert attrs[sc.metadata_key("session_id")] == "conv-9"
    numeric = metadata_attributes({"trace_user_id": 42, "session_id": 7})
    assert (numeric[sc.USER_ID], numeric[sc.SESSION_ID]) == ("42", "7")
    # Not an id: an empty string, a bool, a structure. They stay metadata only.
    odd = metadata_attributes({"trace_user_id": "", "session_id": {"a": 1}})
    assert not {sc.USER_ID, sc.SESSION_ID, sc.CONVERSATION_ID} & set(odd)
    assert sc.USER_ID not in metadata_attributes({"trace_user_id": True})


def test_chat_input_content_splits_system_instructions_and_maps_tool_turns() -> None:
    body = {"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                                     {"type": "image_url", "image_url": {"url": "http://i"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "function": {"name": "weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]}
    attrs = input_content_attributes(sc.OP_CHAT, body)
    assert json.loads(attrs[sc.SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(attrs[sc.INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather?"},
                                   {"type": "image_url",
                                    "content": '{"type":"image_url","image_url":{"url":"http://i"}}'}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "weather", "arguments": "{}"}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "sunny"}]},
    ]


def test_completion_and_embedding_inputs_are_user_text_parts() -> None:
    assert json.loads(input_content_attributes(sc.OP_TEXT_COMPLETION, {"prompt": "Once"})[sc.INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Once"}]}]
    assert json.loads(input_content_attributes(sc.OP_EMBEDDINGS, {"input": ["a", [1, 2]]})[sc.INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "a"}, {"type": "text", "content": "[1,2]"}]}]
    assert input_content_attributes(sc.OP_CHAT, {"messages": "x"}) == {}
    assert input_content_attributes(sc.OP_EMBEDDINGS, {}) == {}


def test_output_content_has_one_message_per_choice_with_tool_calls_and_finish_reason() -> None:
    attrs = output_content_attributes(sc.OP_CHAT, CHAT_ANSWER)
    assert json.loads(attrs[sc.OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Hi!"}], "finish_reason": "stop"},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "weather",
                                         "arguments": '{"city":"Oslo"}'}], "finish_reason": "tool_calls"},
    ]
    completion = {"choices": [{"index": 0, "text": "upon a time", "finish_reason": "length"}]}
    assert json.loads(output_content_attributes(sc.OP_TEXT_COMPLETION, completion)[sc.OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "upon a time"}], "finish_reason": "length"}]
    assert output_content_attributes(sc.OP_EMBEDDINGS, {"data": []}) == {}


def test_malformed_tool_calls_and_numbers_never_raise() -> None:
    """Validation rejects these first; the span builders must not raise on them anyway (issue #9: a
    raise here was a 500 with no span)."""
    messages = [{"role": "assistant", "content": "x", "tool_calls": 5},
                {"role": "assistant", "content": "x", "tool_calls": [{"id": "c", "function": "f"}, "g"]}]
    parts = [m["parts"] for m in json.loads(input_content_attributes(sc.OP_CHAT, {"messages": messages})[
        sc.INPUT_MESSAGES])]
    assert parts == [[{"type": "text", "content": "x"}],
                     [{"type": "text", "content": "x"},
                      {"type": "tool_call", "id": "c", "name": None, "arguments": None}]]
    assert request_attributes({"temperature": 10**400, "max_tokens": 2**63, "seed": -(2**63)}) == {
        sc.REQUEST_SEED: -(2**63)}
    assert metadata_attributes({"big": 10**30, "ok": 7}) == {
        sc.metadata_key("big"): "1000000000000000000000000000000", sc.metadata_key("ok"): 7}
    assert usage_attributes({"prompt_tokens": 2**64, "completion_tokens": 3}) == {sc.USAGE_OUTPUT_TOKENS: 3}
