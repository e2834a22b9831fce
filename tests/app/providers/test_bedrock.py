"""Bedrock's dialect (``app.providers.bedrock``): OpenAI chat -> Converse, and Converse -> OpenAI.

Pure parts on hand-built inputs; the event streams are real binary frames (the fake's encoder,
which botocore's parser and boto3 read in ``test_bedrock_fake.py``).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from app.errors import InvalidRequest, UpstreamInvalidResponse
from app.providers.bedrock.answer import chat_answer, error_json
from app.providers.bedrock.request import converse_body
from app.providers.bedrock.stream import ConverseStreamTranslator
from tests.support.fake_bedrock import Reply, _events, _frame, event_frame

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
CITY = {"type": "object", "properties": {"city": {"type": "string"}}}
WEATHER = {"type": "function", "function": {"name": "weather", "description": "Weather in a city", "parameters": CITY}}


def body(**payload: Any) -> dict[str, Any]:
    return converse_body({"model": "m", "messages": [{"role": "user", "content": "hi"}], **payload})


# --- requests ---------------------------------------------------------------------------------------

def test_system_and_developer_messages_become_system_blocks_and_same_roles_merge() -> None:
    got = converse_body({"messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "one"},
        {"role": "developer", "content": [{"type": "text", "text": "and kind"}]}, {"role": "user", "content": "two"},
        {"role": "assistant", "content": "three"},
        {"role": "assistant", "content": [{"type": "text", "text": "four"}]}]})
    assert got["system"] == [{"text": "be brief"}, {"text": "and kind"}]
    assert got["messages"] == [{"role": "user", "content": [{"text": "one"}, {"text": "two"}]},
                               {"role": "assistant", "content": [{"text": "three"}, {"text": "four"}]}]


def test_a_tool_round_trip_becomes_tool_use_and_tool_results_in_one_user_turn() -> None:
    got = body(tools=[WEATHER], messages=[
        {"role": "user", "content": "weather in Oslo and Rome?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}},
            {"id": "c2", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Rome"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "-3C"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "18C"}]},
        {"role": "user", "content": "thanks"}])
    assert got["messages"][1] == {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "c1", "name": "weather", "input": {"city": "Oslo"}}},
        {"toolUse": {"toolUseId": "c2", "name": "weather", "input": {"city": "Rome"}}}]}
    assert got["messages"][2] == {"role": "user", "content": [
        {"toolResult": {"toolUseId": "c1", "content": [{"text": "-3C"}]}},
        {"toolResult": {"toolUseId": "c2", "content": [{"text": "18C"}]}}, {"text": "thanks"}]}
    assert got["toolConfig"] == {"tools": [{"toolSpec": {
        "name": "weather", "description": "Weather in a city",
        "inputSchema": {"json": WEATHER["function"]["parameters"]}}}]}


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", {"auto": {}}), ("required", {"any": {}}),
    ({"type": "function", "function": {"name": "weather"}}, {"tool": {"name": "weather"}}), (None, None)])
def test_tool_choice_maps_to_converse(choice: Any, expected: Any) -> None:
    got = body(tools=[WEATHER], **({"tool_choice": choice} if choice else {}))
    assert got["toolConfig"].get("toolChoice") == expected


def test_tool_choice_none_leaves_the_tools_out_unless_the_turns_hold_tool_blocks() -> None:
    assert "toolConfig" not in body(tools=[WEATHER], tool_choice="none")
    history = [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"}]
    kept = body(tools=[WEATHER], tool_choice="none", messages=history)["toolConfig"]
    assert "toolChoice" not in kept and kept["tools"][0]["toolSpec"]["name"] == "weather"


def test_images_go_as_base64_bytes_and_urls_are_a_400_naming_the_param() -> None:
    parts = [{"type": "text", "text": "what is it?"},
             {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]
    got = body(messages=[{"role": "user", "content": parts}])
    assert got["messages"][0]["content"][1] == {"image": {"format": "png", "source": {"bytes": PNG}}}
    with pytest.raises(InvalidRequest) as caught:
        body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}])
    assert caught.value.param == "messages[0].content[0].image_url.url" and "base64 data: URL" in caught.value.message


def test_sampling_parameters_go_to_inference_config() -> None:
    got = body(max_completion_tokens=300, max_tokens=10, temperature=0.3, top_p=0.9, stop="END")
    assert got["inferenceConfig"] == {"maxTokens": 300, "temperature": 0.3, "topP": 0.9, "stopSequences": ["END"]}
    assert body(stop=["a", "b"])["inferenceConfig"] == {"stopSequences": ["a", "b"]}
    assert "inferenceConfig" not in body()


def test_model_specific_keys_go_to_additional_fields_and_converse_fields_pass_as_given() -> None:
    guard = {"guardrailIdentifier": "g1", "guardrailVersion": "1"}
    got = body(top_k=40, additionalModelRequestFields={"thinking": {"type": "enabled"}}, guardrailConfig=guard,
               user="u-1", stream=True, stream_options={"include_usage": True}, parallel_tool_calls=True)
    assert got["additionalModelRequestFields"] == {"thinking": {"type": "enabled"}, "top_k": 40}
    assert got["guardrailConfig"] == guard
    assert set(got) == {"messages", "additionalModelRequestFields", "guardrailConfig"}


@pytest.mark.parametrize(("params", "param"), [
    ({"seed": 7}, "seed"), ({"presence_penalty": 0.5}, "presence_penalty"), ({"logprobs": True}, "logprobs"),
    ({"n": 2}, "n"), ({"response_format": {"type": "json_object"}}, "response_format.type")])
def test_what_converse_cannot_express_is_a_400_naming_it(params: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        body(**params)
    assert caught.value.status == 400 and caught.value.param == param


def test_defaults_of_unsupported_parameters_are_no_reason_to_refuse() -> None:
    assert body(seed=None, presence_penalty=0, logprobs=False, n=1, response_format={"type": "text"})["messages"]


@pytest.mark.parametrize(("message", "param"), [
    ({"role": "function", "name": "f", "content": "x"}, "messages[0].role"),
    ({"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]},
     "messages[0].content[0]"),
    ({"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                                           "function": {"name": "f", "arguments": "[1]"}}]},
     "messages[0].tool_calls[0].function.arguments")])
def test_messages_converse_cannot_carry_are_a_400(message: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        converse_body({"messages": [message]})
    assert caught.value.param == param


# --- answers --------------------------------------------------------------------------------------

def converse_answer(content: list[dict[str, Any]], stop: str = "end_turn", **usage: int) -> bytes:
    return json.dumps({"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop,
                       "usage": {"inputTokens": 10, "outputTokens": 4, "totalTokens": 14, **usage},
                       "metrics": {"latencyMs": 1}}).encode()


def test_an_answer_with_text_and_tool_use_is_openai_json_with_usage() -> None:
    raw = converse_answer([{"text": "Let me look."}, {"toolUse": {"toolUseId": "t1", "name": "weather",
                                                                   "input": {"city": "Oslo"}}}], "tool_use")
    got = json.loads(chat_answer(raw, "anthropic.claude-x"))
    assert (got["object"], got["model"]) == ("chat.completion", "anthropic.claude-x")
    assert got["id"].startswith("chatcmpl-")
    assert got["choices"] == [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Let me look.", "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}]}}]
    assert got["usage"] == {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}


def test_cache_reads_and_writes_count_in_the_prompt_and_in_its_details() -> None:
    got = json.loads(chat_answer(converse_answer([{"text": "x"}], cacheReadInputTokens=100,
                                                 cacheWriteInputTokens=20), "m"))
    assert got["usage"] == {"prompt_tokens": 130, "completion_tokens": 4, "total_tokens": 134,
                            "prompt_tokens_details": {"cached_tokens": 100, "cache_creation_tokens": 20}}


@pytest.mark.parametrize(("stop", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
    ("guardrail_intervened", "content_filter"), ("content_filtered", "content_filter"),
    ("model_context_window_exceeded", "length")])
def test_stop_reasons_map_to_openai_finish_reasons(stop: str, finish: str) -> None:
    assert json.loads(chat_answer(converse_answer([{"text": "x"}], stop), "m"))["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize("raw", [b"not json", b"{}", b'{"output": {"message": {"content": "text"}}}'])
def test_an_answer_without_content_is_an_invalid_response(raw: bytes) -> None:
    with pytest.raises(UpstreamInvalidResponse):
        chat_answer(raw, "m")


@pytest.mark.parametrize(("status", "header", "body", "expected"), [
    (429, "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/", b'{"message":"Too many"}',
     {"message": "Too many", "type": "rate_limit_error", "code": "ThrottlingException"}),
    (400, "ValidationException", b'{"message":"bad"}',
     {"message": "bad", "type": "invalid_request_error", "code": "ValidationException"}),
    (403, None, b'{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"denied"}',
     {"message": "denied", "type": "permission_error", "code": "AccessDeniedException"}),
    (503, None, b"<html>busy</html>", {"message": "<html>busy</html>", "type": "api_error", "code": None})])
def test_errors_become_openai_error_json(status: int, header: str | None, body: bytes,
                                         expected: dict[str, Any]) -> None:
    assert json.loads(error_json(status, body, header)) == {"error": expected}


# --- streams --------------------------------------------------------------------------------------

def frames(reply: Reply) -> bytes:
    return b"".join(_frame(kind, event) for kind, event in _events(reply))


def sse(out: bytes) -> list[Any]:
    events = [line.removeprefix("data: ") for line in out.decode().split("\n\n") if line]
    return [e if e == "[DONE]" else json.loads(e) for e in events]


def translate(raw: bytes, include_usage: bool = True, piece: int = 1) -> list[Any]:
    """Fed ``piece`` bytes at a time: frames split anywhere, as TCP splits them."""
    translator = ConverseStreamTranslator("anthropic.claude-x", include_usage)
    out = b"".join(translator.feed(raw[i:i + piece]) for i in range(0, len(raw), piece))
    return sse(out + translator.close())


def test_a_stream_split_byte_by_byte_becomes_openai_chunks_with_usage_last() -> None:
    events = translate(frames(Reply(text="Hello big world")))
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events[1:-2]) == "Hello big world"
    assert events[-3]["choices"][0]["finish_reason"] == "stop"
    assert events[-2]["choices"] == [] and events[-2]["usage"]["prompt_tokens"] == 16
    assert events[-1] == "[DONE]"
    assert len({e["id"] for e in events[:-1]}) == 1 and events[0]["object"] == "chat.completion.chunk"


def test_streamed_tool_calls_carry_their_index_id_name_and_arguments() -> None:
    uses = [{"toolUseId": "t1", "name": "weather", "input": {"city": "Oslo"}},
            {"toolUseId": "t2", "name": "weather", "input": {"city": "Rome"}}]
    events = translate(frames(Reply(text="Looking", tool_uses=uses)), piece=7)
    calls = [c for e in events[:-1] for c in (e["choices"][0]["delta"].get("tool_calls", []) if e["choices"] else [])]
    starts = [c for c in calls if "id" in c]
    assert [(c["index"], c["id"], c["function"]["name"]) for c in starts] == [(0, "t1", "weather"),
                                                                               (1, "t2", "weather")]
    for index, use in enumerate(uses):
        arguments = "".join(c["function"]["arguments"] for c in calls if c["index"] == index)
        assert json.loads(arguments) == use["input"]
    assert events[-3]["choices"][0]["finish_reason"] == "tool_calls"


def test_without_include_usage_no_usage_chunk_is_sent() -> None:
    events = translate(frames(Reply(text="hi")), include_usage=False)
    assert events[-1] == "[DONE]" and all(e["choices"] for e in events[:-1])


def test_an_exception_event_ends_the_stream_with_an_openai_error_event() -> None:
    events = translate(frames(Reply(text="partial answer", stream_exception="throttlingException",
                                    message="Too many tokens")))
    assert events[-1] == {"error": {"message": "Too many tokens", "type": "rate_limit_error",
                                    "code": "ThrottlingException"}}
    assert "[DONE]" not in events


def test_a_stream_that_stops_early_or_is_corrupt_ends_with_an_error_not_done() -> None:
    raw = frames(Reply(text="hello world"))
    cut = translate(raw[: len(raw) // 2])
    assert cut[-1]["error"]["code"] == "upstream_invalid_response" and "[DONE]" not in cut
    corrupt = bytearray(raw)
    corrupt[20] ^= 0xFF  # inside the first frame's headers: its message CRC no longer matches
    events = translate(bytes(corrupt), piece=len(raw))
    assert events == [{"error": {"message": "Bedrock's event stream could not be read (ChecksumMismatch)",
                                 "type": "api_error", "code": "upstream_invalid_response"}}]


def test_events_this_translator_does_not_know_are_skipped() -> None:
    unknown = event_frame({":event-type": "citationsDelta", ":content-type": "application/json",
                           ":message-type": "event"}, b"{}")
    events = translate(unknown + frames(Reply(text="ok")), piece=64)
    assert events[-1] == "[DONE]" and events[1]["choices"][0]["delta"] == {"content": "ok"}
