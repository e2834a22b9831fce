"""A Response object read back as the chat completion it amounts to (``app.dialects.responses_chat``), and the
fake's ``/v1/responses`` proven first with the ``openai`` SDK talking to it directly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai import BadRequestError, OpenAI

from app.dialects.responses_chat import ChatChunks, chat_of_response
from app.dialects.responses_native import upstream_body
from app.errors import UpstreamInvalidResponse
from tests.support.upstream import RESPONSE_ID, FakeOpenAI, response_events

CALL = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
        "arguments": "{\"city\":\"Oslo\"}", "status": "completed"}


def a_response(output: list[dict[str, Any]], status: str = "completed", **extra: Any) -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "created_at": 1_700_000_000, "model": "gpt-4o-2024", "status": status,
            "output": output, "usage": {"input_tokens": 13, "input_tokens_details": {"cached_tokens": 4},
                                        "output_tokens": 9, "output_tokens_details": {"reasoning_tokens": 2},
                                        "total_tokens": 22}, **extra}


def message(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "role": "assistant", "status": "completed", "content": list(parts)}


def test_text_usage_and_stop() -> None:
    chat = chat_of_response(a_response([{"type": "reasoning", "summary": [{"type": "summary_text", "text": "hm"}]},
                                        message({"type": "output_text", "text": "Hello "},
                                                {"type": "output_text", "text": "there"})]))
    assert chat == {"id": "resp_1", "object": "chat.completion", "created": 1_700_000_000, "model": "gpt-4o-2024",
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {
                        "role": "assistant", "content": "Hello there", "reasoning_content": "hm"}}],
                    "usage": {"prompt_tokens": 13, "completion_tokens": 9, "total_tokens": 22,
                              "prompt_tokens_details": {"cached_tokens": 4},
                              "completion_tokens_details": {"reasoning_tokens": 2}}}


def test_function_calls_are_tool_calls() -> None:
    [choice] = chat_of_response(a_response([CALL]))["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]}


@pytest.mark.parametrize(("status", "details", "finish"), [
    ("incomplete", {"reason": "max_output_tokens"}, "length"),
    ("incomplete", {"reason": "content_filter"}, "content_filter"),
    ("failed", None, None),
])
def test_status_is_the_finish_reason(status: str, details: Any, finish: str | None) -> None:
    chat = chat_of_response(a_response([message({"type": "refusal", "refusal": "no"})], status,
                                       incomplete_details=details))
    assert chat["choices"][0]["finish_reason"] == finish and chat["choices"][0]["message"]["refusal"] == "no"


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                        st.sampled_from(["output", "type", "content", "text", "usage", "status", "summary"]),
                        inner, max_size=4), max_leaves=20))
def test_never_raises_on_what_it_cannot_read(output: Any) -> None:
    chat = chat_of_response({"output": output, "usage": output, "status": output})
    assert chat["object"] == "chat.completion" and len(chat["choices"]) == 1


def test_the_upstream_body_keeps_the_clients_fields_and_drops_the_gateways_metadata() -> None:
    request = {"model": "gpt", "input": "hi", "metadata": {"tags": ["a"]}, "temperature": 0.2}
    assert upstream_body(request, {"temperature": 0.9, "top_p": 0.5}) == {"model": "gpt", "input": "hi",
                                                                         "temperature": 0.2, "top_p": 0.5}
    assert upstream_body(request, {"max_tokens": 10}) is None  # no Responses field of that name: translate


# --- the fake, proven with the SDK ------------------------------------------------------------------------


def test_the_sdk_reads_the_fakes_responses() -> None:
    with FakeOpenAI() as fake, OpenAI(api_key="sk-test", base_url=fake.api_base, max_retries=0) as sdk:
        response = sdk.responses.create(model="gpt-4o", input="ping", instructions="Be brief.")
        [received] = fake.requests
    assert response.id == RESPONSE_ID and response.output_text == "fake responds: ping"
    assert response.usage is not None and response.usage.input_tokens == 13
    assert received.path == "/v1/responses" and received.headers["authorization"] == "Bearer sk-test"
    assert received.body == {"model": "gpt-4o", "input": "ping", "instructions": "Be brief."}


def test_the_fake_refuses_a_chat_body_as_openai_does() -> None:
    with (FakeOpenAI() as fake, OpenAI(api_key="sk-test", base_url=fake.api_base, max_retries=0) as sdk,
          pytest.raises(BadRequestError) as refused):
        sdk.post("/responses", cast_to=object, body={"model": "gpt-4o", "messages": []})
    assert refused.value.param == "messages"


def test_the_sdk_reads_the_fakes_streamed_responses() -> None:
    with (FakeOpenAI() as fake, OpenAI(api_key="sk-test", base_url=fake.api_base, max_retries=0) as sdk,
          sdk.responses.stream(model="gpt-4o", input="ping") as stream):
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert final.id == RESPONSE_ID and final.output_text == "fake responds: ping"
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") == 2


# --- a streamed Response read as chat chunks ---------------------------------------------------------


def chunks_of(raw: bytes, cuts: list[int]) -> tuple[list[dict[str, Any]], ChatChunks]:
    reader, out = ChatChunks(), b""
    for start, end in zip([0, *cuts], [*cuts, len(raw)], strict=True):
        out += reader.feed(raw[start:end])
    out += reader.close()
    assert out.endswith(b"data: [DONE]\n\n") or reader.failed
    events = [e[6:] for e in out.split(b"\n\n") if e.startswith(b"data: ") and e != b"data: [DONE]"]
    return [json.loads(e) for e in events], reader


STREAMED = b"".join(response_events({"model": "gpt-4o", "input": "ping"})).replace(b"\n", b"\r\n")


@given(st.lists(st.integers(0, len(STREAMED)), max_size=6).map(sorted))
def test_a_streamed_response_is_chat_chunks_wherever_the_network_cuts_it(cuts: list[int]) -> None:
    chunks, _ = chunks_of(STREAMED, cuts)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "fake responds: ping" and chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 13
    assert {c["id"] for c in chunks} == {RESPONSE_ID}


def event(kind: str, **fields: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()


def test_a_streamed_function_call_is_a_tool_call() -> None:
    raw = (event("response.output_item.added", output_index=1, item={**CALL, "arguments": ""})
           + event("response.function_call_arguments.delta", output_index=1, delta="{\"city\":")
           + event("response.function_call_arguments.delta", output_index=1, delta="\"Oslo\"}")
           + event("response.completed", response=a_response([CALL])))
    chunks, _ = chunks_of(raw, [])
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[:3]]
    assert calls[0] == {"index": 0, "id": "call_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": ""}}
    assert "".join(c["function"]["arguments"] for c in calls) == CALL["arguments"]
    assert chunks[3]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize("failure", [
    event("error", code="server_error", message="boom", param=None, sequence_number=1),
    event("response.failed", sequence_number=1, response={**a_response([], "failed"),
                                                          "error": {"code": "server_error", "message": "boom"}}),
])
def test_a_failure_is_chats_error_event_and_ends_the_stream(failure: bytes) -> None:
    raw = event("response.output_text.delta", delta="Hi", sequence_number=0) + failure + event(
        "response.output_text.delta", delta="more", sequence_number=2)
    chunks, reader = chunks_of(raw, [])
    assert [c.get("error", {}).get("message") for c in chunks] == [None, "boom"]
    assert reader.failed and reader.sequence == 0


def test_an_event_that_is_not_json_ends_the_stream() -> None:
    with pytest.raises(UpstreamInvalidResponse):
        ChatChunks().feed(b"data: {not json\n\n")
