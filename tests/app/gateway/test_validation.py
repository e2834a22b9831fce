"""``app.gateway.validation`` on its own: each rule, the param it names, and the depth limit against a reference."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.calls.attributes import input_content_attributes, request_attributes
from app.errors import InvalidRequest
from app.gateway.validation import MAX_DEPTH, check_json_depth, nested_deeper, parse_body, validate
from contracts import semconv as sc
from tests.support.openai_bodies import chat_body, embeddings_body, encode, mutate

USER = {"role": "user", "content": "hi"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
TOOL = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}}


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt", "messages": [USER], **fields}


def with_message(message: Any) -> dict[str, Any]:
    return chat(messages=[USER, message])


def embed(**fields: Any) -> dict[str, Any]:
    return {"model": "emb", "input": "hello", **fields}


def complete(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt", "prompt": "Once", **fields}


VALID = [
    ("chat-minimal", sc.OP_CHAT, chat()),
    ("every-role", sc.OP_CHAT, chat(messages=[
        {"role": "developer", "content": "be brief"}, {"role": "system", "content": [{"type": "text", "text": "s"}]},
        USER, {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "12C"},
        {"role": "function", "name": "f", "content": None},
        {"role": "assistant", "content": None, "refusal": "no"}, {"role": "assistant"}])),
    ("content-parts", sc.OP_CHAT, with_message({"role": "user", "content": [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
        {"type": "image_url", "image_url": "https://x/y.png"},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-1"}}, {"type": "provider_part", "anything": [1]}]})),
    ("tools-and-formats", sc.OP_CHAT, chat(
        tools=[TOOL, {"type": "custom", "custom": {"name": "grammar"}}], tool_choice={"type": "function",
        "function": {"name": "weather"}}, parallel_tool_calls=False,
        response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": {}}},
        stop=["a", "b", "c", "d"], n=2, max_tokens=0, max_completion_tokens=10, temperature=2, top_p=0.0,
        presence_penalty=-2, frequency_penalty=2.0, logit_bias={"50256": -100}, seed=-5, logprobs=True,
        top_logprobs=20, user="u", metadata={"a": 1}, stream=True, stream_options={"include_usage": True})),
    ("nulls-mean-default", sc.OP_CHAT, chat(temperature=None, stop=None, tools=None, n=None, metadata=None)),
    ("tool-choice-string", sc.OP_CHAT, chat(tool_choice="required", stop="\n")),
    ("legacy-functions", sc.OP_CHAT, chat(functions=[{"name": "f"}], function_call={"name": "f"})),
    ("unknown-fields-pass", sc.OP_CHAT, chat(reasoning_effort=3, extra_body={"x": [1]}, mock_response=5)),
    ("embed-texts", sc.OP_EMBEDDINGS, embed(input=["a", "b"], dimensions=256, encoding_format="base64")),
    ("embed-tokens", sc.OP_EMBEDDINGS, embed(input=[1, 2, 3])),
    ("embed-token-arrays", sc.OP_EMBEDDINGS, embed(input=[[1, 2], [3]])),
    ("prompt-texts", sc.OP_TEXT_COMPLETION, complete(prompt=["a", ""], logprobs=5, echo=True, best_of=2)),
    ("prompt-empty-string", sc.OP_TEXT_COMPLETION, complete(prompt="", suffix="!")),
]


@pytest.mark.parametrize(("operation", "body"), [case[1:] for case in VALID], ids=[case[0] for case in VALID])
def test_valid_bodies_pass_and_their_span_attributes_build(operation: str, body: dict[str, Any]) -> None:
    validate(operation, body)
    request_attributes(body)
    input_content_attributes(operation, body)


BIG = 2**63
INVALID = [
    # id, operation, body, param, code
    ("tool-calls-not-a-list", sc.OP_CHAT, with_message({"role": "assistant", "content": "x", "tool_calls": 5}),
     "messages[1].tool_calls", "invalid_type"),
    ("function-a-string", sc.OP_CHAT, with_message({"role": "assistant", "content": "x", "tool_calls": [
        {**CALL, "function": "f"}]}), "messages[1].tool_calls[0].function", "invalid_type"),
    ("tool-call-without-id", sc.OP_CHAT, with_message({"role": "assistant", "tool_calls": [{"function": "f"}]}),
     "messages[1].tool_calls[0].id", "missing_required_parameter"),
    ("tool-call-type", sc.OP_CHAT, with_message({"role": "assistant", "tool_calls": [{**CALL, "type": "fn"}]}),
     "messages[1].tool_calls[0].type", "invalid_value"),
    ("arguments-object", sc.OP_CHAT, with_message({"role": "assistant", "tool_calls": [
        {**CALL, "function": {"name": "f", "arguments": {}}}]}), "messages[1].tool_calls[0].function.arguments",
     "invalid_type"),
    ("message-a-string", sc.OP_CHAT, chat(messages=["hi"]), "messages[0]", "invalid_type"),
    ("role-number", sc.OP_CHAT, with_message({"role": 1, "content": "x"}), "messages[1].role", "invalid_type"),
    ("role-list", sc.OP_CHAT, with_message({"role": ["user"], "content": "x"}), "messages[1].role", "invalid_type"),
    ("role-unknown", sc.OP_CHAT, with_message({"role": "robot", "content": "x"}), "messages[1].role",
     "invalid_value"),
    ("user-content-missing", sc.OP_CHAT, with_message({"role": "user"}), "messages[1].content",
     "missing_required_parameter"),
    ("user-content-null", sc.OP_CHAT, with_message({"role": "user", "content": None}), "messages[1].content",
     "invalid_type"),
    ("content-number", sc.OP_CHAT, with_message({"role": "assistant", "content": 5}), "messages[1].content",
     "invalid_type"),
    ("content-empty-list", sc.OP_CHAT, with_message({"role": "user", "content": []}), "messages[1].content",
     "invalid_value"),
    ("part-a-string", sc.OP_CHAT, with_message({"role": "user", "content": ["hi"]}), "messages[1].content[0]",
     "invalid_type"),
    ("part-without-type", sc.OP_CHAT, with_message({"role": "user", "content": [{"text": "hi"}]}),
     "messages[1].content[0].type", "missing_required_parameter"),
    ("text-part-number", sc.OP_CHAT, with_message({"role": "user", "content": [{"type": "text", "text": 1}]}),
     "messages[1].content[0].text", "invalid_type"),
    ("text-part-without-text", sc.OP_CHAT, with_message({"role": "user", "content": [{"type": "text"}]}),
     "messages[1].content[0].text", "missing_required_parameter"),
    ("image-url-number", sc.OP_CHAT, with_message({"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": 5}}]}), "messages[1].content[0].image_url.url", "invalid_type"),
    ("audio-without-format", sc.OP_CHAT, with_message({"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AA"}}]}), "messages[1].content[0].input_audio.format",
     "missing_required_parameter"),
    ("file-a-string", sc.OP_CHAT, with_message({"role": "user", "content": [{"type": "file", "file": "x"}]}),
     "messages[1].content[0].file", "invalid_type"),
    ("name-number", sc.OP_CHAT, with_message({"role": "user", "content": "x", "name": 3}), "messages[1].name",
     "invalid_type"),
    ("tool-call-id-number", sc.OP_CHAT, with_message({"role": "tool", "content": "x", "tool_call_id": 3}),
     "messages[1].tool_call_id", "invalid_type"),
    ("tools-object", sc.OP_CHAT, chat(tools={"type": "function"}), "tools", "invalid_type"),
    ("tool-without-type", sc.OP_CHAT, chat(tools=[{"function": {"name": "f"}}]), "tools[0].type",
     "missing_required_parameter"),
    ("tool-function-nameless", sc.OP_CHAT, chat(tools=[{"type": "function", "function": {}}]),
     "tools[0].function.name", "missing_required_parameter"),
    ("tool-parameters-list", sc.OP_CHAT,
     chat(tools=[{"type": "function", "function": {"name": "f", "parameters": []}}]),
     "tools[0].function.parameters", "invalid_type"),
    ("tool-choice-unknown", sc.OP_CHAT, chat(tool_choice="always"), "tool_choice", "invalid_value"),
    ("tool-choice-number", sc.OP_CHAT, chat(tool_choice=1), "tool_choice", "invalid_type"),
    ("tool-choice-function-nameless", sc.OP_CHAT, chat(tool_choice={"type": "function", "function": {}}),
     "tool_choice.function.name", "missing_required_parameter"),
    ("response-format-string", sc.OP_CHAT, chat(response_format="json"), "response_format", "invalid_type"),
    ("response-format-type-number", sc.OP_CHAT, chat(response_format={"type": 1}), "response_format.type",
     "invalid_type"),
    ("json-schema-missing", sc.OP_CHAT, chat(response_format={"type": "json_schema"}), "response_format.json_schema",
     "missing_required_parameter"),
    ("stop-five", sc.OP_CHAT, chat(stop=["a", "b", "c", "d", "e"]), "stop", "invalid_value"),
    ("stop-number", sc.OP_CHAT, chat(stop=5), "stop", "invalid_type"),
    ("stop-list-of-numbers", sc.OP_CHAT, chat(stop=["a", 5]), "stop[1]", "invalid_type"),
    ("n-zero", sc.OP_CHAT, chat(n=0), "n", "invalid_value"),
    ("n-bool", sc.OP_CHAT, chat(n=True), "n", "invalid_type"),
    ("n-over-128", sc.OP_CHAT, chat(n=129), "n", "invalid_value"),
    ("max-tokens-negative", sc.OP_CHAT, chat(max_tokens=-1), "max_tokens", "invalid_value"),
    ("max-tokens-huge", sc.OP_CHAT, chat(max_tokens=BIG), "max_tokens", "invalid_value"),
    ("max-completion-tokens-negative", sc.OP_CHAT, chat(max_completion_tokens=-5), "max_completion_tokens",
     "invalid_value"),
    ("temperature-above-2", sc.OP_CHAT, chat(temperature=2.01), "temperature", "invalid_value"),
    ("temperature-huge-int", sc.OP_CHAT, chat(temperature=10**400), "temperature", "invalid_value"),
    ("top-p-above-1", sc.OP_CHAT, chat(top_p=1.5), "top_p", "invalid_value"),
    ("presence-penalty-low", sc.OP_CHAT, chat(presence_penalty=-2.5), "presence_penalty", "invalid_value"),
    ("frequency-penalty-string", sc.OP_CHAT, chat(frequency_penalty="1"), "frequency_penalty", "invalid_type"),
    ("logit-bias-list", sc.OP_CHAT, chat(logit_bias=[1]), "logit_bias", "invalid_type"),
    ("logit-bias-value", sc.OP_CHAT, chat(logit_bias={"7": 101}), "logit_bias.7", "invalid_value"),
    ("seed-float", sc.OP_CHAT, chat(seed=1.5), "seed", "invalid_type"),
    ("seed-huge", sc.OP_CHAT, chat(seed=-BIG - 1), "seed", "invalid_value"),
    ("logprobs-int-in-chat", sc.OP_CHAT, chat(logprobs=1), "logprobs", "invalid_type"),
    ("top-logprobs-21", sc.OP_CHAT, chat(top_logprobs=21), "top_logprobs", "invalid_value"),
    ("stream-options-list", sc.OP_CHAT, chat(stream_options=[]), "stream_options", "invalid_type"),
    ("include-usage-string", sc.OP_CHAT, chat(stream_options={"include_usage": "yes"}),
     "stream_options.include_usage", "invalid_type"),
    ("messages-null", sc.OP_CHAT, chat(messages=None), "messages", "invalid_type"),
    ("input-empty-string", sc.OP_EMBEDDINGS, embed(input=""), "input", "invalid_value"),
    ("input-empty-list", sc.OP_EMBEDDINGS, embed(input=[]), "input", "invalid_value"),
    ("input-mixed", sc.OP_EMBEDDINGS, embed(input=["a", 1]), "input[1]", "invalid_type"),
    ("input-negative-token", sc.OP_EMBEDDINGS, embed(input=[1, -2]), "input[1]", "invalid_value"),
    ("input-float-token", sc.OP_EMBEDDINGS, embed(input=[[1, 2.5]]), "input[0][1]", "invalid_type"),
    ("input-empty-token-array", sc.OP_EMBEDDINGS, embed(input=[[1], []]), "input[1]", "invalid_value"),
    ("input-object", sc.OP_EMBEDDINGS, embed(input={"text": "a"}), "input", "invalid_type"),
    ("input-list-of-objects", sc.OP_EMBEDDINGS, embed(input=[{"text": "a"}]), "input[0]", "invalid_type"),
    ("input-empty-string-in-list", sc.OP_EMBEDDINGS, embed(input=["a", ""]), "input[1]", "invalid_value"),
    ("dimensions-zero", sc.OP_EMBEDDINGS, embed(dimensions=0), "dimensions", "invalid_value"),
    ("dimensions-huge", sc.OP_EMBEDDINGS, embed(dimensions=10**9), "dimensions", "invalid_value"),
    ("encoding-format", sc.OP_EMBEDDINGS, embed(encoding_format="int8"), "encoding_format", "invalid_value"),
    ("prompt-object", sc.OP_TEXT_COMPLETION, complete(prompt={"a": 1}), "prompt", "invalid_type"),
    ("prompt-empty-list", sc.OP_TEXT_COMPLETION, complete(prompt=[]), "prompt", "invalid_value"),
    ("completion-logprobs-6", sc.OP_TEXT_COMPLETION, complete(logprobs=6), "logprobs", "invalid_value"),
    ("best-of-zero", sc.OP_TEXT_COMPLETION, complete(best_of=0), "best_of", "invalid_value"),
    ("best-of-21", sc.OP_TEXT_COMPLETION, complete(best_of=21), "best_of", "invalid_value"),
]


@pytest.mark.parametrize(("operation", "body", "param", "code"), [case[1:] for case in INVALID],
                         ids=[case[0] for case in INVALID])
def test_each_rule_names_its_param(operation: str, body: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate(operation, body)
    error = caught.value
    assert (error.status, error.param, error.code) == (400, param, code)
    assert f"'{param}'" in error.message
    assert len(error.message) < 200  # values are quoted short, whatever was sent


def test_an_error_message_quotes_a_huge_value_briefly() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate(sc.OP_CHAT, chat(temperature=10**400))
    assert caught.value.message.endswith("got 1000000000000000000000000000000000000....")


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, 990, 100_000])
def test_depth_over_the_limit_is_a_400_before_decoding(depth: int) -> None:
    raw = b'{"model": "m", "messages": [], "deep": ' + nested(depth) + b"}"  # the body is one level more
    if depth < MAX_DEPTH:
        assert parse_body(raw)["deep"] is not None
        return
    with pytest.raises(InvalidRequest) as caught:
        parse_body(raw)
    assert (caught.value.status, caught.value.param, caught.value.code) == (400, None, "invalid_value")
    assert caught.value.message == f"request body is nested more than {MAX_DEPTH} levels deep"


def test_a_malformed_deep_body_is_a_400_too() -> None:
    with pytest.raises(InvalidRequest):
        parse_body(b'{"a": ' + b"[" * 5000)


def test_brackets_inside_strings_do_not_count() -> None:
    raw = json.dumps({"model": "m", "text": "[" * 500 + "\\\"{" * 100, "x": [[["]]]"]]]}).encode()
    assert parse_body(raw)["x"] == [[["]]]"]]]
    check_json_depth(raw)


def test_admin_bodies_get_the_same_limit() -> None:
    check_json_depth(b'{"metadata": ' + nested(MAX_DEPTH - 1) + b"}")
    with pytest.raises(InvalidRequest):
        check_json_depth(b'{"metadata": ' + nested(MAX_DEPTH) + b"}")
    with pytest.raises(InvalidRequest):
        check_json_depth(nested(5000))
    check_json_depth(b"[[[[ not json")  # left to the admin parser's own error


def reference_depth(value: Any) -> int:
    if isinstance(value, dict | list):
        children = value.values() if isinstance(value, dict) else value
        return 1 + max((reference_depth(c) for c in children), default=0)
    return 0


tricky_text = st.text(alphabet='[]{}"\\an\u00e9\U0001f600', max_size=6)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | tricky_text,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
                           max_leaves=60)


@settings(max_examples=1500, database=None, derandomize=True, deadline=None)
@given(json_values, st.booleans(), st.integers(0, 12))
def test_nested_deeper_agrees_with_a_recursive_reference(value: Any, ascii_only: bool, limit: int) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert nested_deeper(raw, limit) == (reference_depth(value) > limit)




def test_a_generated_body_is_rejected_cleanly_or_safe_for_the_span_builders() -> None:
    accepted: list[str] = []

    @settings(max_examples=600, database=None, derandomize=True, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.one_of(chat_body.map(lambda b: (sc.OP_CHAT, b)), embeddings_body.map(lambda b: (sc.OP_EMBEDDINGS, b))),
           st.data())
    def check(case: tuple[str, dict[str, Any]], data: st.DataObject) -> None:
        operation, body = case
        try:
            parsed = parse_body(encode(mutate(body, data)))
            validate(operation, parsed)
        except InvalidRequest as exc:
            assert exc.status == 400 and exc.code in ("invalid_json", "invalid_type", "invalid_value",
                                                      "missing_required_parameter")
            return
        accepted.append(operation)
        request_attributes(parsed)
        input_content_attributes(operation, parsed)

    check()
    assert accepted.count(sc.OP_CHAT) > 50 and accepted.count(sc.OP_EMBEDDINGS) > 50  # both halves are exercised
