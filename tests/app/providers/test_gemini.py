"""The Gemini dialect (``app.providers.gemini``): OpenAI requests in Gemini's terms, Gemini's answers,
streams and errors in OpenAI's, checked on hand-built bodies in the shapes of Google's API reference."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import pytest

from app.calls.operations import Operation
from app.errors import InvalidRequest, UpstreamInvalidResponse
from app.providers.gemini import GeminiDialect, GeminiRoute
from app.providers.gemini.answer import finish_reason, usage
from app.providers.gemini.ids import call_id, split_call_id
from app.providers.gemini.request import chat_body, embed_body
from app.providers.gemini.stream import GeminiStream
from tests.support.gemini_checks import check_generate

DIALECT = GeminiDialect("gemini-2.5-flash", GeminiRoute("https://g.test", "gemini-2.5-flash", "k-1"))
TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "find",
                                           "parameters": {"type": "object", "additionalProperties": False}}}]


def _chat(**extra: Any) -> dict[str, Any]:
    return {"model": "alias", "messages": [{"role": "user", "content": "hi"}], **extra}


def test_the_request_goes_to_the_models_method_with_the_key_in_a_header_not_the_url() -> None:
    plain = DIALECT.request(Operation.CHAT, _chat(), stream=False)
    streamed = DIALECT.request(Operation.CHAT, _chat(), stream=True)
    embedded = DIALECT.request(Operation.EMBEDDINGS, {"input": "x"}, stream=False)
    assert plain.url == "https://g.test/v1beta/models/gemini-2.5-flash:generateContent"
    assert streamed.url == "https://g.test/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert embedded.url == "https://g.test/v1beta/models/gemini-2.5-flash:batchEmbedContents"
    assert plain.headers["x-goog-api-key"] == "k-1" and "k-1" not in plain.url
    assert json.loads(plain.body) == plain.logged == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_a_tuned_model_keeps_its_collection_in_the_path() -> None:
    assert GeminiRoute("https://g.test", "tunedModels/mine-1", "k").url("generateContent") == (
        "https://g.test/v1beta/tunedModels/mine-1:generateContent")


def test_system_and_developer_messages_become_the_system_instruction_in_order() -> None:
    body = chat_body({"messages": [{"role": "system", "content": "one"}, {"role": "user", "content": "q"},
                                   {"role": "developer", "content": [{"type": "text", "text": "two"}]}]})
    assert body["systemInstruction"] == {"parts": [{"text": "one"}, {"text": "two"}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "q"}]}]


def test_generation_parameters_are_renamed_into_generation_config() -> None:
    body = chat_body(_chat(temperature=0.3, top_p=0.9, max_tokens=100, stop="END", n=2, seed=7,
                           presence_penalty=0.5, frequency_penalty=0.25, user="u", metadata={"a": "b"}))
    assert body["generationConfig"] == {"temperature": 0.3, "topP": 0.9, "maxOutputTokens": 100,
                                        "stopSequences": ["END"], "candidateCount": 2, "seed": 7,
                                        "presencePenalty": 0.5, "frequencyPenalty": 0.25}
    assert chat_body(_chat(max_completion_tokens=5, max_tokens=9))["generationConfig"] == {"maxOutputTokens": 5}


def test_json_response_formats_ask_for_json_with_the_schema_as_written() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}
    strict = chat_body(_chat(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}))
    assert strict["generationConfig"] == {"responseMimeType": "application/json", "responseJsonSchema": schema}
    loose = chat_body(_chat(response_format={"type": "json_object"}))
    assert loose["generationConfig"] == {"responseMimeType": "application/json"}


def test_tools_and_tool_choice_become_function_declarations_and_calling_config() -> None:
    body = chat_body(_chat(tools=TOOLS, tool_choice="required"))
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "lookup", "description": "find",
         "parametersJsonSchema": {"type": "object", "additionalProperties": False}}]}]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    named = chat_body(_chat(tools=TOOLS, tool_choice={"type": "function", "function": {"name": "lookup"}}))
    assert named["toolConfig"]["functionCallingConfig"] == {"mode": "ANY", "allowedFunctionNames": ["lookup"]}
    assert chat_body(_chat(tool_choice="none"))["toolConfig"]["functionCallingConfig"] == {"mode": "NONE"}


def test_a_tool_round_trip_names_each_result_after_its_call_and_returns_the_signature() -> None:
    signed = call_id("r", 0, 0, "c2ln")
    messages = [
        {"role": "user", "content": "both"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": signed, "type": "function", "function": {"name": "lookup", "arguments": '{"q": 1}'}},
            {"id": "call_b", "type": "function", "function": {"name": "fetch", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "call_b", "content": "B"},
        {"role": "tool", "tool_call_id": signed, "content": [{"type": "text", "text": "A"}]},
    ]
    body = chat_body({"messages": messages, "tools": TOOLS})
    assert body["contents"][1] == {"role": "model", "parts": [
        {"functionCall": {"name": "lookup", "args": {"q": 1}}, "thoughtSignature": "c2ln"},
        {"functionCall": {"name": "fetch", "args": {}}}]}
    assert body["contents"][2] == {"role": "user", "parts": [  # one turn: Gemini pairs results with calls
        {"functionResponse": {"name": "fetch", "response": {"content": "B"}}},
        {"functionResponse": {"name": "lookup", "response": {"content": "A"}}}]}
    assert check_generate(body) is None


def test_images_go_inline_from_data_urls_and_by_reference_from_https_and_gs() -> None:
    parts = chat_body({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
        {"type": "image_url", "image_url": {"url": "https://example.test/cat.jpg?size=2"}},
        {"type": "image_url", "image_url": {"url": "gs://bucket/dog.webp"}},
        {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}]}]})["contents"][0]["parts"]
    assert parts == [{"text": "look"}, {"inlineData": {"mimeType": "image/png", "data": "iVBO"}},
                     {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.test/cat.jpg?size=2"}},
                     {"fileData": {"mimeType": "image/webp", "fileUri": "gs://bucket/dog.webp"}},
                     {"inlineData": {"mimeType": "audio/wav", "data": "UklG"}}]


@pytest.mark.parametrize(("body", "param"), [
    (_chat(logprobs=True), "logprobs"),
    (_chat(logit_bias={"1": 2}), "logit_bias"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/img"}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,AA"}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"messages": [{"role": "tool", "tool_call_id": "nobody", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]},
     "messages[0].tool_calls[0].function.arguments"),
    ({"messages": [{"role": "critic", "content": "x"}]}, "messages[0].role"),
    (_chat(tools=[{"type": "web_search"}]), "tools[0]"),
    (_chat(temperature="hot"), "temperature"),
    (_chat(n=10**30), "n"),
])
def test_what_gemini_cannot_be_told_is_a_400_naming_the_param(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        chat_body(body)
    assert caught.value.status == 400 and caught.value.param == param


def test_embeddings_are_one_request_per_input_with_the_dimensions() -> None:
    assert embed_body({"input": ["a", "b"], "dimensions": 4}, "gemini-embedding-001") == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 4},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 4}]}
    with pytest.raises(InvalidRequest):
        embed_body({"input": [1, 2, 3]}, "m")


# --- answers ------------------------------------------------------------------------------------------

ANSWER = {
    "candidates": [{"content": {"role": "model", "parts": [
        {"text": "thinking...", "thought": True}, {"text": "Hello"}, {"text": " there"},
        {"functionCall": {"name": "lookup", "args": {"q": "x"}}, "thoughtSignature": "c2ln"}]},
        "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 4,
                      "cachedContentTokenCount": 6, "totalTokenCount": 19},
    "modelVersion": "gemini-2.5-flash-001", "responseId": "abc"}


def test_an_answer_has_the_text_the_calls_with_stable_signed_ids_and_the_usage() -> None:
    raw = json.dumps(ANSWER).encode()
    answer = json.loads(DIALECT.answer(Operation.CHAT, raw, _chat()))
    [choice] = answer["choices"]
    assert (answer["id"], answer["object"], answer["model"]) == ("chatcmpl-abc", "chat.completion",
                                                                "gemini-2.5-flash-001")
    assert choice["message"]["content"] == "Hello there" and choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["function"] == {"name": "lookup", "arguments": '{"q":"x"}'} and call["type"] == "function"
    assert split_call_id(call["id"])[1] == "c2ln"
    assert call["id"] == json.loads(DIALECT.answer(Operation.CHAT, raw, _chat()))["choices"][0]["message"][
        "tool_calls"][0]["id"]
    assert answer["usage"] == {"prompt_tokens": 10, "completion_tokens": 9, "total_tokens": 19,
                               "prompt_tokens_details": {"cached_tokens": 6},
                               "completion_tokens_details": {"reasoning_tokens": 4}}


@pytest.mark.parametrize(("reason", "called", "expected"), [
    ("STOP", False, "stop"), ("STOP", True, "tool_calls"), ("MAX_TOKENS", False, "length"),
    ("SAFETY", False, "content_filter"), ("RECITATION", False, "content_filter"),
    ("BLOCKLIST", False, "content_filter"), ("PROHIBITED_CONTENT", False, "content_filter"),
    ("OTHER", False, "stop"), ("MALFORMED_FUNCTION_CALL", False, "stop"), (None, False, None)])
def test_finish_reasons_are_openais(reason: str | None, called: bool, expected: str | None) -> None:
    assert finish_reason(reason, called) == expected


def test_a_blocked_prompt_is_an_empty_answer_filtered_by_content() -> None:
    raw = json.dumps({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}})
    answer = json.loads(DIALECT.answer(Operation.CHAT, raw.encode(), _chat()))
    assert answer["choices"] == [{"index": 0, "message": {"role": "assistant", "content": None},
                                  "finish_reason": "content_filter"}]
    assert answer["usage"] == {"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3}


def test_several_candidates_are_several_choices() -> None:
    raw = {"candidates": [{"content": {"parts": [{"text": t}]}, "finishReason": "STOP", "index": i}
                          for i, t in enumerate(("a", "b"))]}
    answer = json.loads(DIALECT.answer(Operation.CHAT, json.dumps(raw).encode(), _chat()))
    assert [(c["index"], c["message"]["content"]) for c in answer["choices"]] == [(0, "a"), (1, "b")]


def test_an_unreadable_answer_is_an_invalid_upstream_response() -> None:
    with pytest.raises(UpstreamInvalidResponse):
        DIALECT.answer(Operation.CHAT, b"<html>", _chat())


def test_embeddings_come_back_as_floats_or_as_openais_base64_with_usage() -> None:
    raw = json.dumps({"embeddings": [{"values": [0.5, -1.0]}], "usageMetadata": {"promptTokenCount": 2}}).encode()
    floats = json.loads(DIALECT.answer(Operation.EMBEDDINGS, raw, {"input": "x"}))
    assert floats == {"object": "list", "model": "gemini-2.5-flash", "usage": {"prompt_tokens": 2, "total_tokens": 2},
                      "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -1.0]}]}
    packed = json.loads(DIALECT.answer(Operation.EMBEDDINGS, raw, {"input": "x", "encoding_format": "base64"}))
    assert struct.unpack("<2f", base64.b64decode(packed["data"][0]["embedding"])) == (0.5, -1.0)


def test_usage_without_metadata_is_none_and_without_thoughts_has_no_reasoning() -> None:
    assert usage(None) is None
    assert usage({"promptTokenCount": 1, "candidatesTokenCount": 2}) == {
        "prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}


@pytest.mark.parametrize(("status", "kind"), [(400, "invalid_request_error"), (403, "permission_error"),
                                              (429, "rate_limit_error"), (503, "api_error")])
def test_googles_errors_become_openai_error_json(status: int, kind: str) -> None:
    raw = json.dumps({"error": {"code": status, "message": "quota gone", "status": "RESOURCE_EXHAUSTED"}}).encode()
    assert json.loads(DIALECT.error(status, raw)) == {"error": {"message": "quota gone", "type": kind,
                                                                "code": "RESOURCE_EXHAUSTED"}}
    assert json.loads(DIALECT.error(502, b"Bad Gateway"))["error"]["message"] == "Bad Gateway"


# --- streams ------------------------------------------------------------------------------------------


def _events(*objs: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(o).encode() + b"\r\n\r\n" for o in objs)


def _chunks(out: bytes) -> list[Any]:
    return [json.loads(line[6:]) for line in out.split(b"\n\n") if line.startswith(b"data: {")]


STREAM = _events(
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}], "responseId": "s1",
     "modelVersion": "gemini-2.5-flash-001", "usageMetadata": {"promptTokenCount": 4}},
    {"candidates": [{"content": {"parts": [{"text": "lo"}, {"functionCall": {"name": "f", "args": {}}}]},
                     "index": 0, "finishReason": "STOP"}],
     "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6}})


@pytest.mark.parametrize("step", [1, 7, len(STREAM)])
def test_a_stream_fed_in_any_pieces_gives_the_same_chunks_then_usage_and_done(step: int) -> None:
    translator = DIALECT.stream(Operation.CHAT, {"stream_options": {"include_usage": True}})
    out = b"".join(translator.feed(STREAM[i:i + step]) for i in range(0, len(STREAM), step)) + translator.close()
    chunks = _chunks(out)
    assert out.endswith(b"data: [DONE]\n\n")
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hel"}
    assert chunks[1]["choices"][0]["delta"]["content"] == "lo"
    assert chunks[1]["choices"][0]["delta"]["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}
    assert chunks[1]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 6
    assert {c["id"] for c in chunks} == {"chatcmpl-s1"} and chunks[0]["model"] == "gemini-2.5-flash-001"


def test_a_stream_without_include_usage_has_no_usage_chunk() -> None:
    translator = GeminiStream("m", include_usage=False)
    chunks = _chunks(translator.feed(STREAM) + translator.close())
    assert all("usage" not in c for c in chunks)


def test_an_error_inside_a_stream_becomes_an_openai_error_event() -> None:
    translator = GeminiStream("m", include_usage=True)
    out = translator.feed(_events({"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}))
    assert _chunks(out) == [{"error": {"message": "boom", "type": "api_error", "code": "INTERNAL"}}]
