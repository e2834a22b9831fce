"""The Responses dialect on its own: requests to chat bodies, chat answers and chunks to what the ``openai``
SDK reads (its ``Response`` model validates every answer; its stream helper reads every stream, through an
``httpx.MockTransport``, so its identity checks between events hold)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from openai import OpenAI
from openai.types.responses import Response

from app.dialects.responses import ResponsesDialect
from app.errors import InvalidRequest, UpstreamTimeout

DIALECT = ResponsesDialect()
WEATHER = {"type": "function", "name": "get_weather", "description": "The forecast",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": False}
USAGE = {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29,
         "prompt_tokens_details": {"cached_tokens": 4, "cache_creation_tokens": 6},
         "completion_tokens_details": {"reasoning_tokens": 2}}


def chat_answer(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": "gpt-x-2025",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
            "usage": USAGE}


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, usage: Any = None) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "gpt-x-2025",
            "choices": choices, **({"usage": usage} if usage else {})}


def streamed(request: dict[str, Any], chunks: Iterable[dict[str, Any]]) -> bytes:
    stream = DIALECT.stream(request)
    return b"".join(stream.feed(c) for c in chunks) + stream.close()


def events(sse: bytes) -> list[dict[str, Any]]:
    out = []
    for block in sse.split(b"\n\n"):
        if block:
            event, data = block.split(b"\n")
            assert event == b"event: " + json.loads(data[6:])["type"].encode()
            out.append(json.loads(data[6:]))
    return out


def sdk_over(body: bytes, content_type: str) -> OpenAI:
    """The SDK, answered ``body`` by a mock transport: it reads our bytes as it would OpenAI's."""
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": content_type})
    return OpenAI(api_key="k", base_url="http://gateway.test/v1", max_retries=0,
                  http_client=httpx.Client(transport=httpx.MockTransport(answer)))


# --- requests --------------------------------------------------------------------------------------


def test_a_string_input_with_instructions_is_a_system_and_a_user_message() -> None:
    chat = DIALECT.to_chat({"model": "m", "input": "hi", "instructions": "Be brief.", "max_output_tokens": 50,
                            "temperature": 0.2, "top_p": 0.9, "user": "u-7", "store": True,
                            "metadata": {"tags": ["a"]}, "parallel_tool_calls": False})
    assert chat == {"model": "m", "messages": [{"role": "system", "content": "Be brief."},
                                               {"role": "user", "content": "hi"}],
                    "max_completion_tokens": 50, "temperature": 0.2, "top_p": 0.9, "user": "u-7",
                    "metadata": {"tags": ["a"]}, "parallel_tool_calls": False}


def test_items_become_chat_messages_with_their_parts_and_tool_turns() -> None:
    chat = DIALECT.to_chat({"model": "m", "input": [
        {"role": "developer", "content": "Use tools."},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Weather?"},
            {"type": "input_image", "image_url": "https://example.test/a.png", "detail": "low"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me see."}]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
        {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": "{\"city\":\"Rome\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "rain"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
    ], "tools": [WEATHER], "tool_choice": {"type": "function", "name": "get_weather"}})
    call = {"type": "function", "function": {"name": "get_weather"}}
    assert chat["messages"] == [
        {"role": "developer", "content": "Use tools."},
        {"role": "user", "content": [
            {"type": "text", "text": "Weather?"},
            {"type": "image_url", "image_url": {"url": "https://example.test/a.png", "detail": "low"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Let me see."}], "tool_calls": [
            {"id": "call_1", **call, "function": {**call["function"], "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_2", **call, "function": {**call["function"], "arguments": "{\"city\":\"Rome\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "rain"}]},
    ]
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "The forecast", "parameters": WEATHER["parameters"], "strict": False}}]
    assert chat["tool_choice"] == call


@pytest.mark.parametrize(("text", "expected"), [
    ({"format": {"type": "json_object"}}, {"response_format": {"type": "json_object"}}),
    ({"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}},
     {"response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"},
                                                                 "strict": True}}}),
    ({"format": {"type": "text"}, "verbosity": "low"}, {"verbosity": "low"}),
])
def test_text_format_is_response_format(text: dict[str, Any], expected: dict[str, Any]) -> None:
    chat = DIALECT.to_chat({"model": "m", "input": "hi", "text": text})
    assert {k: v for k, v in chat.items() if k not in ("model", "messages")} == expected


def test_a_stream_asks_for_the_usage_chunk_and_reasoning_effort_carries_over() -> None:
    chat = DIALECT.to_chat({"model": "m", "input": "hi", "stream": True, "reasoning": {"effort": "low"},
                            "tool_choice": "required", "include": ["reasoning.encrypted_content"]})
    assert chat["stream_options"] == {"include_usage": True}
    assert (chat["stream"], chat["reasoning_effort"], chat["tool_choice"]) == (True, "low", "required")


@pytest.mark.parametrize(("extra", "param"), [
    ({"previous_response_id": "resp_1"}, "previous_response_id"),
    ({"conversation": "conv_1"}, "conversation"),
    ({"background": True}, "background"),
    ({"prompt": {"id": "pmpt_1"}}, "prompt"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"tools": [WEATHER, {"type": "function"}]}, "tools[1].name"),
    ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
    ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]},
     "input[0].content[0].image_url"),
    ({"input": [{"type": "function_call", "call_id": "c", "name": "f"}]}, "input[0].arguments"),
    ({"input": 7}, "input"),
    ({"input": []}, "input"),
    ({"text": {"format": {"type": "grammar"}}}, "text.format.type"),
    ({"max_tool_calls": 3}, "max_tool_calls"),
    ({"model": None}, "model"),
])
def test_what_cannot_be_translated_is_a_400_naming_the_responses_field(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        DIALECT.to_chat({"model": "m", "input": "hi", **extra})
    assert refused.value.param == param and refused.value.status == 400


def test_store_and_background_false_are_accepted() -> None:
    assert DIALECT.to_chat({"model": "m", "input": "hi", "store": True, "background": False,
                            "previous_response_id": None})["messages"] == [{"role": "user", "content": "hi"}]


# --- answers ---------------------------------------------------------------------------------------


def test_a_chat_answer_is_a_completed_response_the_sdk_validates() -> None:
    request = {"model": "gpt-x", "input": "hi", "instructions": "Be brief.", "tools": [WEATHER], "store": True,
               "metadata": {"k": "v"}}
    answer = DIALECT.answer(chat_answer({"content": "Hello."}), request)
    response = Response.model_validate(answer)
    assert (response.status, response.model, response.output_text, response.store) == (
        "completed", "gpt-x-2025", "Hello.", False)
    assert response.id.startswith("resp_") and response.output[0].id.startswith("msg_")
    assert response.instructions == "Be brief." and response.metadata == {"k": "v"}
    assert response.tools[0].name == "get_weather" and response.created_at == 1_700_000_000
    assert response.usage is not None and response.usage.model_dump() == {
        "input_tokens": 20, "output_tokens": 9, "total_tokens": 29,
        "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 6, "cache_write_tokens_details": None},
        "output_tokens_details": {"reasoning_tokens": 2}}


def test_tool_calls_are_function_call_items_after_the_text() -> None:
    calls = [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"a\":1}"}},
             {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]
    answer = DIALECT.answer(chat_answer({"content": "Checking.", "tool_calls": calls}, "tool_calls"), {})
    response = Response.model_validate({**answer, "model": "m"})
    assert [item.type for item in response.output] == ["message", "function_call", "function_call"]
    first = response.output[1]
    assert first.type == "function_call"
    assert (first.call_id, first.name, first.arguments, first.status) == ("call_1", "get_weather", "{\"a\":1}",
                                                                          "completed")
    assert first.id is not None and first.id.startswith("fc_")


def test_a_tool_call_without_text_has_no_message_item() -> None:
    calls = [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    answer = DIALECT.answer(chat_answer({"content": None, "tool_calls": calls}, "tool_calls"), {})
    assert [item["type"] for item in answer["output"]] == ["function_call"]


@pytest.mark.parametrize(("finish", "reason"), [("length", "max_output_tokens"), ("content_filter", "content_filter")])
def test_a_cut_answer_is_an_incomplete_response(finish: str, reason: str) -> None:
    answer = DIALECT.answer(chat_answer({"content": "Hel"}, finish), {"max_output_tokens": 1})
    response = Response.model_validate(answer)
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == reason and response.output[0].status == "incomplete"


def test_errors_keep_openais_error_json() -> None:
    status, body = DIALECT.error(InvalidRequest("`background` mode is not supported", param="background"))
    assert status == 400 and json.loads(body) == {"error": {
        "message": "`background` mode is not supported", "type": "invalid_request_error", "param": "background",
        "code": None}}
    assert DIALECT.error(UpstreamTimeout("no answer"))[0] == 504


# --- streams ---------------------------------------------------------------------------------------

TEXT_AND_TOOL = [
    chunk({"role": "assistant", "content": ""}), chunk({"content": "Let me"}), chunk({"content": " check."}),
    chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                           "function": {"name": "get_weather", "arguments": ""}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
    chunk({}, "tool_calls"), chunk(usage=USAGE),
]


def test_a_stream_is_the_responses_event_sequence() -> None:
    got = events(streamed({"model": "gpt-x", "input": "hi"}, TEXT_AND_TOOL))
    assert [e["type"] for e in got] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.output_item.added",
        "response.function_call_arguments.delta", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    assert [e["sequence_number"] for e in got] == list(range(len(got)))
    assert got[0]["response"]["status"] == "in_progress" and got[0]["response"]["output"] == []
    assert got[6]["text"] == "Let me check." and got[12]["arguments"] == "{\"city\":\"Paris\"}"
    final = got[-1]["response"]
    assert final["id"] == got[0]["response"]["id"] and final["status"] == "completed"
    assert final["usage"]["input_tokens"] == 20 and final["usage"]["input_tokens_details"]["cached_tokens"] == 4
    assert [item["id"] for item in final["output"]] == [got[2]["item"]["id"], got[9]["item"]["id"]]


def test_the_sdk_stream_helper_reads_the_stream() -> None:
    sse = streamed({"model": "gpt-x", "input": "hi", "tools": [WEATHER]}, TEXT_AND_TOOL)
    with sdk_over(sse, "text/event-stream") as sdk, sdk.responses.stream(model="gpt-x", input="hi") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas == ["Let me", " check."] and final.output_text == "Let me check."
    call = final.output[1]
    assert call.type == "function_call" and (call.name, call.call_id, call.arguments) == (
        "get_weather", "call_1", "{\"city\":\"Paris\"}")
    assert final.usage is not None and final.usage.total_tokens == 29


def test_a_stream_cut_by_the_token_limit_ends_incomplete() -> None:
    got = events(streamed({"model": "m", "input": "hi", "max_output_tokens": 1},
                          [chunk({"content": "Hel"}), chunk({}, "length"), chunk(usage=USAGE)]))
    assert got[-1]["type"] == "response.incomplete"
    assert got[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert got[-2]["type"] == "response.output_item.done" and got[-2]["item"]["status"] == "incomplete"


def test_an_error_mid_stream_is_one_error_event_and_the_end() -> None:
    stream = DIALECT.stream({"model": "m", "input": "hi"})
    head = events(stream.feed(chunk({"content": "Hel"})))
    failed = events(stream.error({"message": "overloaded", "type": "upstream_error", "code": "fake_529",
                                  "param": None}))
    assert [e["type"] for e in failed] == ["error"]
    assert failed[0] == {"type": "error", "sequence_number": len(head), "code": "fake_529",
                         "message": "overloaded", "param": None}
    assert stream.feed(chunk({"content": "lo"})) == b"" and stream.close() == b""


def test_an_empty_stream_still_completes_for_the_sdk() -> None:
    sse = streamed({"model": "m", "input": "hi"}, [chunk({}, "stop")])
    with sdk_over(sse, "text/event-stream") as sdk, sdk.responses.stream(model="m", input="hi") as stream:
        final = stream.get_final_response()
    assert final.status == "completed" and final.output == [] and final.usage is None


def test_a_refusal_is_streamed_as_a_refusal_part() -> None:
    got = events(streamed({"model": "m", "input": "hi"}, [chunk({"refusal": "No."}), chunk({}, "stop")]))
    kinds = [e["type"] for e in got]
    assert "response.refusal.delta" in kinds and "response.refusal.done" in kinds
    assert got[-1]["response"]["output"][0]["content"] == [{"type": "refusal", "refusal": "No."}]


def test_reasoning_comes_first_as_a_reasoning_item() -> None:
    answer = DIALECT.answer(chat_answer({"content": "42", "reasoning_content": "Think."}), {})
    response = Response.model_validate({**answer, "model": "m"})
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and reasoning.id.startswith("rs_") and reasoning.summary == []
    assert reasoning.content is not None and reasoning.content[0].text == "Think."
    assert message.type == "message" and response.output_text == "42"


def test_streamed_reasoning_is_a_reasoning_item_before_the_message() -> None:
    chunks = [chunk({"reasoning_content": "Th"}), chunk({"reasoning_content": "ink."}), chunk({"content": "42"}),
              chunk({}, "stop")]
    got = events(streamed({"model": "m", "input": "hi"}, chunks))
    kinds = [e["type"] for e in got]
    assert kinds[2:9] == ["response.output_item.added", "response.content_part.added",
                          "response.reasoning_text.delta", "response.reasoning_text.delta",
                          "response.reasoning_text.done", "response.content_part.done", "response.output_item.done"]
    assert got[6]["text"] == "Think." and "logprobs" not in got[4]
    with sdk_over(streamed({"model": "m", "input": "hi"}, chunks), "text/event-stream") as sdk, \
            sdk.responses.stream(model="m", input="hi") as stream:
        final = stream.get_final_response()
    assert [item.type for item in final.output] == ["reasoning", "message"] and final.output_text == "42"
