"""The Messages dialect's pure parts: request -> chat, chat answer and chunks -> Anthropic's, errors, counts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.dialects.messages import MessagesDialect, count_tokens, estimate_input_tokens
from app.dialects.messages_answer import MessagesStream, to_message
from app.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
)

DIALECT = MessagesDialect()
PNG = "iVBORw0KGgo="
WEATHER = {"name": "get_weather", "description": "The forecast", "input_schema": {"type": "object"},
           "cache_control": {"type": "ephemeral"}}


def request(**more: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], **more}


# --- requests ----------------------------------------------------------------------------------


def test_a_full_request_becomes_the_chat_body_it_stands_for() -> None:
    body = request(
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Look:"},
                                         {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                      "data": PNG}},
                                         {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"},
                                              {"type": "text", "text": "Let me check."},
                                              {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                               "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
                 "content": [{"type": "text", "text": "no data"},
                             {"type": "image", "source": {"type": "url", "url": "https://x/map.png"}}]},
                {"type": "text", "text": "And now?"}]}],
        tools=[WEATHER], tool_choice={"type": "any", "disable_parallel_tool_use": True}, stop_sequences=["END"],
        temperature=0.5, top_p=0.9, top_k=5, metadata={"user_id": "u-1", "tags": ["a"]}, stream=True)
    assert DIALECT.to_chat(body) == {
        "model": "m", "max_tokens": 10, "temperature": 0.5, "top_p": 0.9, "top_k": 5, "stop": ["END"],
        "user": "u-1", "metadata": {"tags": ["a"]}, "stream": True, "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system",
             "content": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": [{"type": "text", "text": "Look:"},
                                         {"type": "image_url",
                                          "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                                         {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
            {"role": "assistant", "content": "Let me check.",
             "tool_calls": [{"id": "toolu_1", "type": "function",
                             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
            {"role": "tool", "tool_call_id": "toolu_1",
             "content": [{"type": "text", "text": "Error:"}, {"type": "text", "text": "no data"}]},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/map.png"}},
                                         {"type": "text", "text": "And now?"}]}],
        "tools": [{"type": "function", "cache_control": {"type": "ephemeral"},
                   "function": {"name": "get_weather", "parameters": {"type": "object"},
                                "description": "The forecast"}}],
        "tool_choice": "required", "parallel_tool_calls": False}


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, "auto"), ({"type": "none"}, "none"), ({"type": "any"}, "required"),
    ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}})])
def test_tool_choices(choice: dict[str, Any], expected: Any) -> None:
    assert DIALECT.to_chat(request(tool_choice=choice))["tool_choice"] == expected


def test_a_server_tool_and_a_text_document_go_on() -> None:
    server = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    chat = DIALECT.to_chat(request(tools=[server], messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hello"}}]}]))
    assert chat["tools"] == [server]
    file = {"file_data": "data:text/plain;base64,aGVsbG8="}
    assert chat["messages"][0]["content"] == [{"type": "file", "file": file}]


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    (request(max_tokens=0), "max_tokens"),
    (request(max_tokens=True), "max_tokens"),
    ({"max_tokens": 5, "messages": []}, "model"),
    (request(messages=[]), "messages"),
    (request(messages=[{"role": "system", "content": "x"}]), "messages[0].role"),
    (request(messages=[{"role": "user", "content": [{"type": "audio"}]}]), "messages[0].content[0].type"),
    (request(messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}]),
     "messages[0].content[0].source"),
    (request(messages=[{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": 3}]}]),
     "messages[0].content[0].input"),
    (request(messages=[{"role": "user", "content": [{"type": "tool_result"}]}]), "messages[0].content[0].tool_use_id"),
    (request(tools=[{"name": "f"}]), "tools[0].input_schema"),
    (request(tool_choice={"type": "tool"}), "tool_choice"),
    (request(metadata={"user_id": 7}), "metadata.user_id"),
    (request(stop_sequences="END"), "stop_sequences"),
    (request(system=[{"type": "image"}]), "system[0]"),
    (request(stream="yes"), "stream"),
])
def test_what_cannot_be_translated_is_a_400_naming_the_anthropic_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        DIALECT.to_chat(body)
    assert refused.value.param == param and refused.value.message.startswith(param)


# --- answers -----------------------------------------------------------------------------------


def chat_answer(finish: str, **message: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "model": "gpt-x", "choices": [{"index": 0, "finish_reason": finish,
                                                               "message": {"role": "assistant", **message}}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 4, "total_tokens": 34,
                      "prompt_tokens_details": {"cached_tokens": 10, "cache_creation_tokens": 5}}}


def test_an_answer_with_text_and_a_tool_call_is_a_message() -> None:
    chat = chat_answer("tool_calls", content="Checking.", tool_calls=[
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
        {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "not json"}}])
    assert DIALECT.answer(chat, request()) == {
        "id": "msg_chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-x",
        "content": [{"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
                    {"type": "tool_use", "id": "call_2", "name": "g", "input": {"arguments": "not json"}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 15, "output_tokens": 4, "cache_read_input_tokens": 10,
                  "cache_creation_input_tokens": 5}}


@pytest.mark.parametrize(("finish", "stop"), [("stop", "end_turn"), ("length", "max_tokens"),
                                              ("tool_calls", "tool_use"), ("content_filter", "refusal"),
                                              ("something_new", "end_turn")])
def test_finish_reasons_are_stop_reasons(finish: str, stop: str) -> None:
    assert to_message(chat_answer(finish, content="x"), "m")["stop_reason"] == stop


def test_an_answer_without_choices_or_usage_is_still_a_message() -> None:
    message = to_message({}, "asked-for")
    assert (message["model"], message["content"], message["usage"]["input_tokens"]) == ("asked-for", [], 0)
    assert message["id"].startswith("msg_")


# --- streams -----------------------------------------------------------------------------------


def events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if block:
            name, data = block.split("\n")
            assert name.startswith("event: ") and data.startswith("data: ")
            payload = json.loads(data[6:])
            assert payload["type"] == name[7:]
            out.append((name[7:], payload))
    return out


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **more: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-s", "model": "gpt-x", "choices": choices, **more}


def test_a_stream_of_text_then_a_tool_call_is_anthropics_event_sequence() -> None:
    stream = MessagesStream("m", 12)
    raw = b"".join([
        stream.feed(chunk({"role": "assistant", "content": ""})),
        stream.feed(chunk({"content": "Hel"})), stream.feed(chunk({"content": "lo"})),
        stream.feed(chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": ""}}]})),
        stream.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]})),
        stream.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]})),
        stream.feed(chunk({}, "tool_calls")),
        stream.feed(chunk(usage={"prompt_tokens": 20, "completion_tokens": 6,
                                 "prompt_tokens_details": {"cached_tokens": 8}})),
        stream.close()])
    said = events(raw)
    assert [name for name, _ in said] == [
        "message_start", "ping", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop"]
    start = said[0][1]["message"]
    assert (start["id"], start["model"], start["usage"], start["content"]) == (
        "msg_chatcmpl-s", "gpt-x", {"input_tokens": 12, "output_tokens": 0}, [])
    assert said[2][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    assert [said[i][1]["delta"] for i in (3, 4)] == [{"type": "text_delta", "text": "Hel"},
                                                     {"type": "text_delta", "text": "lo"}]
    assert said[6][1]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "f", "input": {}}
    assert [said[i][1]["delta"]["partial_json"] for i in (7, 8)] == ['{"a":', "1}"]
    assert said[10][1] == {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                           "usage": {"input_tokens": 12, "output_tokens": 6, "cache_read_input_tokens": 8,
                                     "cache_creation_input_tokens": 0}}


def test_an_empty_stream_still_starts_and_stops() -> None:
    assert [name for name, _ in events(MessagesStream("m", 0).close())] == [
        "message_start", "ping", "message_delta", "message_stop"]


def test_an_error_in_the_stream_is_an_error_event() -> None:
    stream = MessagesStream("m", 0)
    stream.feed(chunk({"content": "x"}))
    [(name, payload)] = events(stream.error({"message": "blocked by moderation", "type": "invalid_request_error"}))
    assert (name, payload["error"]) == ("error", {"type": "invalid_request_error", "message": "blocked by moderation"})
    [(_, other)] = events(stream.error({"message": "boom", "type": "upstream_error"}))
    assert other["error"]["type"] == "api_error"


# --- errors and counts -------------------------------------------------------------------------


@pytest.mark.parametrize(("exc", "status", "kind"), [
    (InvalidRequest("bad"), 400, "invalid_request_error"), (AuthenticationFailed("who"), 401, "authentication_error"),
    (PermissionDenied("no"), 403, "permission_error"), (NotFound("gone"), 404, "not_found_error"),
    (PayloadTooLarge("big"), 413, "request_too_large"), (UpstreamError("slow", status=429), 429, "rate_limit_error"),
    (GatewayError("bug"), 500, "api_error"), (ServiceUnavailable("down", retry_after=1), 529, "overloaded_error"),
    (UpstreamTimeout("late"), 504, "api_error"), (UpstreamError("odd", status=422), 422, "invalid_request_error")])
def test_errors_have_anthropics_shape(exc: GatewayError, status: int, kind: str) -> None:
    got_status, body = DIALECT.error(exc)
    expected = {"type": "error", "error": {"type": kind, "message": exc.message}}
    assert (got_status, json.loads(body)) == (status, expected)


def test_count_tokens_estimates_text_pictures_and_messages() -> None:
    body = {"model": "m", "system": "x" * 40, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "y" * 80},
                                     {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                  "data": PNG * 1000}}]}]}
    # the keys read as text too ("role", "content", "text"...): a few characters a block
    assert count_tokens(body) == {"input_tokens": estimate_input_tokens(body)}
    assert 1600 + 30 < estimate_input_tokens(body) < 1600 + 45
    with pytest.raises(InvalidRequest):
        count_tokens({"model": "m", "messages": "hi"})


# --- generated requests ------------------------------------------------------------------------

_text = st.builds(lambda t: {"type": "text", "text": t}, st.text(max_size=5))
_image = st.builds(lambda u: {"type": "image", "source": {"type": "url", "url": "https://x/" + u}}, st.text(max_size=3))
_result = st.builds(lambda c, e: {"type": "tool_result", "tool_use_id": "t1", "content": c, "is_error": e},
                    st.text(max_size=3) | st.lists(_text | _image, max_size=2), st.booleans())
_use = st.builds(lambda n: {"type": "tool_use", "id": "t1", "name": "f" + n, "input": {"n": n}}, st.text(max_size=3))
_thinking = st.just({"type": "thinking", "thinking": "hm", "signature": "s"})
_user = st.builds(lambda c: {"role": "user", "content": c}, st.text(max_size=3) | st.lists(_text | _image | _result,
                                                                                          min_size=1, max_size=3))
_assistant = st.builds(lambda c: {"role": "assistant", "content": c},
                       st.text(max_size=3) | st.lists(_text | _use | _thinking, min_size=1, max_size=3))
_tool = st.builds(lambda n: {"name": "f" + n, "input_schema": {"type": "object"}}, st.text(max_size=3))
_requests = st.builds(lambda m, t, s: {"model": "m", "max_tokens": 5, "messages": m, "tools": t, "system": s},
                      st.lists(_user | _assistant, min_size=1, max_size=4), st.lists(_tool, max_size=2),
                      st.text(max_size=3) | st.lists(_text, max_size=2))


def _blocks(body: dict[str, Any], kind: str) -> int:
    count = 0
    for message in body["messages"]:
        for block in message["content"] if isinstance(message["content"], list) else [{"type": "text"}]:
            count += block["type"] == kind
            inner = block.get("content") if block["type"] == "tool_result" else None
            count += sum(b["type"] == kind for b in inner) if isinstance(inner, list) else 0
    return count


def _parts(chat: dict[str, Any], kind: str) -> int:
    count = 0
    for message in chat["messages"]:
        content = message.get("content")
        if message["role"] == "system":
            continue
        if isinstance(content, str):
            count += kind == "text"
        elif isinstance(content, list):
            count += sum(p["type"] == kind and p.get("text") != "Error:" for p in content)
    return count


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(body=_requests)
def test_a_translated_request_loses_no_message_tool_or_block(body: dict[str, Any]) -> None:
    chat = DIALECT.to_chat(body)
    messages = [m for m in chat["messages"] if m["role"] != "system"]
    assert len(chat.get("tools", [])) == len(body["tools"])
    assert sum(len(m.get("tool_calls", [])) for m in messages) == _blocks(body, "tool_use")
    assert sum(m["role"] == "tool" for m in messages) == _blocks(body, "tool_result")
    # a tool result given as a string is one text part of its tool message; one without any text gets an empty
    # one, unless its "Error:" stands there
    textless = sum(isinstance(b["content"], str)
                   or not (b["is_error"] or any(p["type"] == "text" for p in b["content"]))
                   for m in body["messages"] if isinstance(m["content"], list)
                   for b in m["content"] if b["type"] == "tool_result")
    assert _parts(chat, "text") == _blocks(body, "text") + textless
    assert _parts(chat, "image_url") == _blocks(body, "image")
    assert len(chat["messages"]) - len(messages) == (1 if body["system"] else 0)


_anything = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
                         lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(st.sampled_from(["type", "text", "role", "content", "source", "id", "name",
                                                            "input", "tool_use_id", "url", "media_type", "data"]),
                                           inner, max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(body=st.fixed_dictionaries({"model": st.just("m"), "max_tokens": st.just(5)},
                                  optional={"messages": _anything, "system": _anything, "tools": _anything,
                                            "tool_choice": _anything, "metadata": _anything,
                                            "stop_sequences": _anything}))
def test_any_request_is_translated_or_refused_with_a_400(body: dict[str, Any]) -> None:
    try:
        DIALECT.to_chat(body)
    except InvalidRequest as refused:
        assert refused.param
