"""The Anthropic dialect (``app.providers.anthropic``): OpenAI chat -> Messages API and back, on plain dicts."""

from __future__ import annotations

import contextlib
import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config.providers.anthropic import AnthropicParams
from app.config.settings import DeploymentConfig
from app.errors import InvalidRequest, UpstreamInvalidResponse
from app.providers.anthropic import AnthropicDialect, AnthropicStream, error_bytes, to_chat_completion, to_messages_body
from app.providers.anthropic.answer import FINISH_REASONS
from tests.support import fake_anthropic
from tests.support.openai_bodies import chat_body

PNG = "iVBORw0KGgo="
USER = {"role": "user", "content": "hi"}


def body(**payload: Any) -> dict[str, Any]:
    return to_messages_body({"messages": [USER], **payload}, 1000)


# --- requests ------------------------------------------------------------------------------------


def test_system_and_developer_messages_become_the_top_level_system_in_order() -> None:
    out = to_messages_body({"messages": [
        {"role": "system", "content": "one"}, USER,
        {"role": "developer", "content": [{"type": "text", "text": "two", "cache_control": {"type": "ephemeral"}}]},
    ]}, 1000)
    assert out["system"] == [{"type": "text", "text": "one"},
                             {"type": "text", "text": "two", "cache_control": {"type": "ephemeral"}}]
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_consecutive_turns_of_a_role_are_merged_and_tool_results_come_first() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    out = to_messages_body({"messages": [
        USER, {"role": "user", "content": "again"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "user", "content": "and a note"},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    ]}, 1000)
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert [b["text"] for b in out["messages"][0]["content"]] == ["hi", "again"]
    assert out["messages"][1]["content"] == [{"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": 1}}]
    assert out["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "call_1", "content": "42"},
                                             {"type": "text", "text": "and a note"}]


def test_images_go_as_base64_or_url_sources() -> None:
    parts = [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
             {"type": "image_url", "image_url": "https://example.test/cat.jpg"}]
    out = to_messages_body({"messages": [{"role": "user", "content": parts}]}, 1000)
    assert [b["source"] for b in out["messages"][0]["content"]] == [
        {"type": "base64", "media_type": "image/png", "data": PNG}, {"type": "url", "url": "https://example.test/cat.jpg"}]


@pytest.mark.parametrize("url", ["data:,AA", "data:image/tiff;base64,AAAA", "ftp://x/y.png"])
def test_an_image_anthropic_cannot_take_is_a_400_naming_the_part(url: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        part = {"type": "image_url", "image_url": {"url": url}}
        to_messages_body({"messages": [{"role": "user", "content": [part]}]}, 1000)
    assert caught.value.param.startswith("messages[0].content[0].image_url")


def test_sampling_stop_user_and_anthropics_own_params() -> None:
    out = body(temperature=0.3, top_p=0.9, stop="END", user="u-7", top_k=5, stream=True,
               stream_options={"include_usage": True})
    assert (out["temperature"], out["top_p"], out["stop_sequences"], out["metadata"], out["top_k"]) == \
        (0.3, 0.9, ["END"], {"user_id": "u-7"}, 5)
    assert "stream" not in out and "stream_options" not in out and "model" not in out
    assert body(stop=["a", "b"])["stop_sequences"] == ["a", "b"]


@pytest.mark.parametrize(("payload", "sent"), [
    ({}, 1000), ({"max_tokens": 7}, 7), ({"max_completion_tokens": 9, "max_tokens": 7}, 9)])
def test_max_tokens_is_always_sent_the_clients_first(payload: dict[str, Any], sent: int) -> None:
    assert body(**payload)["max_tokens"] == sent


def test_tools_and_tool_choice() -> None:
    tools = [{"type": "function", "function": {"name": "get", "description": "d",
                                               "parameters": {"type": "object", "properties": {"a": {}}}}},
             {"type": "function", "function": {"name": "bare"}},
             {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}]
    out = body(tools=tools, tool_choice="required", parallel_tool_calls=False)
    assert out["tools"] == [
        {"name": "get", "description": "d", "input_schema": {"type": "object", "properties": {"a": {}}}},
        {"name": "bare", "input_schema": {"type": "object", "properties": {}}}, tools[2]]
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert body(tool_choice="none")["tool_choice"] == {"type": "none"}
    assert body(tool_choice="auto")["tool_choice"] == {"type": "auto"}
    assert body(tool_choice={"type": "function", "function": {"name": "get"}})["tool_choice"] == \
        {"type": "tool", "name": "get"}
    assert body(parallel_tool_calls=False)["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_params_anthropic_lacks_are_dropped_when_neutral_and_refused_otherwise() -> None:
    out = body(n=1, presence_penalty=0, frequency_penalty=0.0, logprobs=False, response_format={"type": "text"})
    assert not {"n", "presence_penalty", "frequency_penalty", "logprobs", "response_format"} & set(out)
    for name, value in [("n", 2), ("presence_penalty", 0.5), ("logprobs", True), ("seed", 1),
                        ("response_format", {"type": "json_object"})]:
        with pytest.raises(InvalidRequest) as caught:
            body(**{name: value})
        assert (caught.value.param, caught.value.code) == (name, "unsupported_parameter")
    dropped = to_messages_body({"messages": [USER], "n": 2, "seed": 1}, 1000, drop_params=True)
    assert "n" not in dropped and "seed" not in dropped


@pytest.mark.parametrize(("message", "param"), [
    ({"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "not json"}}]},
     "messages[0].tool_calls[0].function.arguments"),
    ({"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]},
     "messages[0].content[0].type"),
    ({"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]},
     "messages[0].content[0].file.file_data"),
    ({"role": "function", "name": "f", "content": "x"}, "messages[0].role"),
    ({"role": "assistant", "content": None}, "messages[0].content"),
])
def test_what_anthropic_cannot_say_is_a_400_naming_the_field(message: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        to_messages_body({"messages": [message]}, 1000)
    assert caught.value.param == param


def test_inline_pdf_and_text_files_become_documents() -> None:
    parts = [{"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}},
             {"type": "file", "file": {"file_data": "data:text/plain;base64,aGVsbG8="}}]
    out = to_messages_body({"messages": [{"role": "user", "content": parts}]}, 1000)
    assert [b["source"] for b in out["messages"][0]["content"]] == [
        {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        {"type": "text", "media_type": "text/plain", "data": "hello"}]


def test_the_dialect_sends_the_messages_api_request() -> None:
    config = DeploymentConfig("c", "anthropic", "claude-haiku-4-5", "c-0", api_base="https://api.anthropic.com",
                              api_key="sk-ant-k", headers={"anthropic-beta": "x"}, params=AnthropicParams(64000))
    built = AnthropicDialect(config).request("chat", {"model": "c", "messages": [USER]}, stream=True)
    assert built.url == "https://api.anthropic.com/v1/messages"
    assert dict(built.headers) == {"x-api-key": "sk-ant-k", "anthropic-version": "2023-06-01",
                                   "content-type": "application/json", "anthropic-beta": "x"}
    assert json.loads(built.body) == {"model": "claude-haiku-4-5", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]}], "max_tokens": 64000, "stream": True}


# --- generated requests ---------------------------------------------------------------------------


def _expected_blocks(message: dict[str, Any]) -> int:
    content = message.get("content")
    parts = [content] if isinstance(content, str) else content or []
    if message["role"] == "assistant":
        parts = [p for p in parts if p != "" and not (isinstance(p, dict) and p.get("text") == "")]
        return len(parts) + len(message.get("tool_calls") or [])
    return 1 if message["role"] == "tool" else len(parts)


@settings(max_examples=300, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(chat_body)
def test_generated_requests_raise_only_invalid_request_and_lose_nothing(payload: dict[str, Any]) -> None:
    payload.pop("metadata", None)  # the proxy takes LiteLLM's metadata out before any deployment sees it
    with contextlib.suppress(InvalidRequest):
        to_messages_body(payload, 4096)
    try:  # params dropped: more of the bodies get through to the checks below
        out = to_messages_body(payload, 4096, drop_params=True)
    except InvalidRequest:
        return
    messages = payload["messages"]
    system = [m for m in messages if m["role"] in ("system", "developer")]
    others = [m for m in messages if m["role"] not in ("system", "developer")]
    assert len(out.get("system", [])) == sum(_expected_blocks(m) for m in system)
    assert sum(len(m["content"]) for m in out["messages"]) == sum(_expected_blocks(m) for m in others)
    assert len(out.get("tools", [])) == len(payload.get("tools") or [])
    json.dumps(out)  # and what is sent is JSON


# Well-formed bodies only (the shared strategy's junk stops most at the first field): the merging and
# block building get exercised on every draw.
_text = st.text(max_size=6)
_args = st.dictionaries(st.sampled_from("abc"), st.integers(), max_size=2).map(json.dumps)
_call = st.builds(lambda i, n, a: {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}},
                  st.integers(0, 9), st.sampled_from(["f", "g"]), _args)
_part = st.one_of(st.builds(lambda t: {"type": "text", "text": t}, _text),
                  st.just({"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}),
                  st.just({"type": "image_url", "image_url": {"url": "https://example.test/a.png"}}))
_content = st.one_of(_text, st.lists(_part, min_size=1, max_size=3))
_system_content = st.one_of(_text, st.lists(_part.filter(lambda p: p["type"] == "text"), min_size=1, max_size=2))
_message = st.one_of(
    st.builds(lambda r, c: {"role": r, "content": c}, st.sampled_from(["system", "developer"]), _system_content),
    st.builds(lambda c: {"role": "user", "content": c}, _content),
    st.builds(lambda c, calls: {"role": "assistant", "content": c, **({"tool_calls": calls} if calls else {})},
              st.one_of(st.none(), _text), st.lists(_call, max_size=2)),
    st.builds(lambda i, c: {"role": "tool", "tool_call_id": f"call_{i}", "content": c}, st.integers(0, 9), _content))
_tool = st.builds(lambda n: {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}},
                  st.sampled_from(["f", "g"]))
well_formed = st.fixed_dictionaries({"model": st.just("m"), "messages": st.lists(_message, min_size=1, max_size=6)},
                                    optional={"tools": st.lists(_tool, min_size=1, max_size=2),
                                              "tool_choice": st.sampled_from(["auto", "none", "required"])})


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(well_formed)
def test_well_formed_requests_keep_every_message_part_and_tool(payload: dict[str, Any]) -> None:
    try:
        out = to_messages_body(payload, 4096)
    except InvalidRequest as refused:  # only an assistant turn with nothing in it, or no turn at all
        assert refused.param in ("messages",) or refused.param.endswith(".content"), refused
        return
    test_generated_requests_raise_only_invalid_request_and_lose_nothing.hypothesis.inner_test(payload)
    roles = [m["role"] for m in out["messages"]]
    assert all(a != b for a, b in itertools.pairwise(roles))  # turns alternate


# --- answers -------------------------------------------------------------------------------------


def message(**fields: Any) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 10, "output_tokens": 4}, **fields}


def test_an_answer_becomes_a_chat_completion_with_openai_usage() -> None:
    usage = {"input_tokens": 10, "cache_read_input_tokens": 20, "cache_creation_input_tokens": 5,
             "output_tokens": 4, "output_tokens_details": {"thinking_tokens": 2}}
    out = to_chat_completion(message(usage=usage), created=1700)
    assert (out["id"], out["object"], out["created"], out["model"]) == ("msg_1", "chat.completion", 1700,
                                                                        "claude-haiku-4-5")
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "hello"}
    assert out["usage"] == {"prompt_tokens": 35, "completion_tokens": 4, "total_tokens": 39,
                            "prompt_tokens_details": {"cached_tokens": 20, "cache_creation_tokens": 5},
                            "completion_tokens_details": {"reasoning_tokens": 2}}


def test_tool_use_and_thinking_blocks_become_tool_calls_and_reasoning() -> None:
    content = [{"type": "thinking", "thinking": "hmm", "signature": "s"},
               {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"city": "Paris"}}]
    choice = to_chat_completion(message(content=content, stop_reason="tool_use"), created=0)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {"role": "assistant", "content": None, "reasoning_content": "hmm", "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": {"name": "get", "arguments": '{"city":"Paris"}'}}]}


@pytest.mark.parametrize(("stop", "finish"), [*FINISH_REASONS.items(), (None, "stop"), ("new_reason", "stop")])
def test_stop_reasons_map_to_openai_finish_reasons(stop: str | None, finish: str) -> None:
    assert to_chat_completion(message(stop_reason=stop), created=0)["choices"][0]["finish_reason"] == finish
    assert FINISH_REASONS["refusal"] == "content_filter" and FINISH_REASONS["max_tokens"] == "length"


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"type": "message"}'])
def test_an_answer_that_is_no_message_is_an_invalid_upstream_response(raw: bytes) -> None:
    config = DeploymentConfig("c", "anthropic", "m", "c-0", api_base="http://x", api_key="k")
    with pytest.raises(UpstreamInvalidResponse):
        AnthropicDialect(config).answer("chat", raw, {})


def test_errors_keep_anthropics_type_as_type_and_code() -> None:
    raw = json.dumps({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}, "request_id": "r"})
    assert json.loads(error_bytes(429, raw.encode())) == {
        "error": {"message": "slow", "type": "rate_limit_error", "code": "rate_limit_error"}}
    html = json.loads(error_bytes(413, b"<html>413 Request Entity Too Large</html>"))["error"]
    assert html["message"] == "<html>413 Request Entity Too Large</html>" and html["type"] is None
    assert json.loads(error_bytes(500, b""))["error"]["message"] == "HTTP 500"


# --- streams -------------------------------------------------------------------------------------


def events_for(request: dict[str, Any], **reply: Any) -> bytes:
    full = {"model": "claude-haiku-4-5", "max_tokens": 100, **request}
    return b"".join(fake_anthropic.stream_events(full, fake_anthropic.Reply(**reply)))


def chunks(out: bytes) -> list[Any]:
    return [json.loads(e[6:]) if e != b"data: [DONE]" else "[DONE]" for e in out.split(b"\n\n") if e]


def run(raw: bytes, include_usage: bool = True, step: int | None = None) -> list[Any]:
    stream = AnthropicStream(1700, include_usage)
    pieces = [raw] if step is None else [raw[i:i + step] for i in range(0, len(raw), step)]
    return chunks(b"".join(stream.feed(p) for p in pieces) + stream.close())


def test_a_text_stream_becomes_chunks_a_finish_reason_and_the_usage_chunk() -> None:
    out = run(events_for({"messages": [{"role": "user", "content": "a b"}]}))
    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert out[0]["id"] == "msg_fake01" and out[0]["object"] == "chat.completion.chunk"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in out[1:-2])
    assert text == "fake claude says: a b"
    assert out[-3]["choices"][0]["finish_reason"] == "stop"
    assert out[-2]["choices"] == [] and out[-2]["usage"] == {
        "prompt_tokens": 19, "completion_tokens": 5, "total_tokens": 24,
        "prompt_tokens_details": {"cached_tokens": 5, "cache_creation_tokens": 3}}
    assert out[-1] == "[DONE]"


def test_bytes_cut_anywhere_give_the_same_chunks() -> None:
    raw = events_for({"messages": [{"role": "user", "content": "héllo wörld"}], "tools": [
        {"name": "get", "input_schema": {"type": "object"}}]})
    whole = run(raw)
    assert all(run(raw, step=step) == whole for step in (1, 2, 7, 64))
    assert all(run(raw.replace(b"\n", b"\r\n"), step=step) == whole for step in (None, 1, 3))


def test_a_streamed_tool_use_becomes_tool_call_deltas() -> None:
    out = run(events_for({"messages": [USER], "tools": [{"name": "get", "input_schema": {"type": "object"}}]}), False)
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in out[:-1] if c["choices"][0]["delta"].get("tool_calls")]
    assert calls[0] == {"index": 0, "id": "toolu_fake01", "type": "function",
                        "function": {"name": "get", "arguments": ""}}
    assert json.loads("".join(c["function"]["arguments"] for c in calls)) == {"city": "Paris", "days": 2}
    assert out[-2]["choices"][0]["finish_reason"] == "tool_calls" and out[-1] == "[DONE]"  # no usage chunk


def test_an_error_event_ends_the_stream_with_an_openai_error_and_no_done() -> None:
    out = run(events_for({"messages": [USER]}, stream_error="overloaded_error", stream_error_after=3))
    assert out[-1] == {"error": {"message": "Overloaded", "type": "overloaded_error", "code": "overloaded_error"}}


def test_a_stream_cut_before_message_stop_ends_without_done() -> None:
    raw = events_for({"messages": [USER]})
    out = run(raw[:raw.index(b"event: message_stop")])
    assert "[DONE]" not in out and not any(c["choices"] == [] for c in out)


@pytest.mark.parametrize("raw", [b"event: x\ndata: {nope\n\n", b"data: [1]\n\n",
                                 b'data: {"type": "content_block_delta", "index": 9, '
                                 b'"delta": {"type": "input_json_delta", "partial_json": "{"}}\n\n'])
def test_an_event_that_cannot_be_read_ends_the_stream_as_invalid(raw: bytes) -> None:
    with pytest.raises(UpstreamInvalidResponse):
        AnthropicStream(0, True).feed(raw)


def test_pings_comments_and_unknown_events_are_skipped() -> None:
    stream = AnthropicStream(0, True)
    assert stream.feed(b': hi\n\nevent: ping\ndata: {"type": "ping"}\n\ndata: {"type": "brand_new"}\n\n') == b""
