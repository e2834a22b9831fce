"""What text a request and an answer carry, and how a long text is cut."""

from __future__ import annotations

import base64

from app.hooks.moderation.texts import MAX_TEXT_CHARS, file_text, request_text, response_text, split_text
from contracts import semconv as sc


def test_chat_messages_strings_and_text_parts() -> None:
    body = {"messages": [{"role": "system", "content": "be nice"},
                         {"role": "user", "content": [{"type": "text", "text": "part one"},
                                                      {"type": "image_url", "image_url": {"url": "http://x"}},
                                                      {"type": "text", "text": "part two"}]},
                         {"role": "assistant", "content": None, "tool_calls": []}]}
    assert request_text(sc.OP_CHAT, body) == "be nice\n\npart one\n\npart two"


def test_embeddings_input_and_completion_prompt() -> None:
    assert request_text(sc.OP_EMBEDDINGS, {"input": ["a", "b", [1, 2]]}) == "a\n\nb"
    assert request_text(sc.OP_EMBEDDINGS, {"input": [101, 102]}) == ""
    assert request_text(sc.OP_TEXT_COMPLETION, {"prompt": "say hi"}) == "say hi"


def test_answer_text_of_every_choice_and_none_for_embeddings() -> None:
    chat = {"choices": [{"message": {"content": "one"}}, {"message": {"content": None}},
                        {"message": {"content": "two"}}]}
    assert response_text(sc.OP_CHAT, chat) == "one\n\ntwo"
    assert response_text(sc.OP_TEXT_COMPLETION, {"choices": [{"text": "t"}]}) == "t"
    assert response_text(sc.OP_EMBEDDINGS, {"data": [{"embedding": [0.1]}]}) == ""


def test_short_text_is_one_part() -> None:
    assert split_text("hello") == ["hello"]
    assert split_text("x" * MAX_TEXT_CHARS) == ["x" * MAX_TEXT_CHARS]


def test_long_text_is_cut_on_whitespace_and_nothing_is_lost() -> None:
    words = " ".join(f"word{i}" for i in range(5000))  # ~44,000 characters
    parts = split_text(words)
    assert "".join(parts) == words
    assert all(len(p) <= MAX_TEXT_CHARS for p in parts) and len(parts) == 5
    assert all(p.endswith(" ") for p in parts[:-1])  # no word cut in two


def test_text_without_whitespace_is_cut_hard() -> None:
    parts = split_text("y" * 25_000)
    assert [len(p) for p in parts] == [10_000, 10_000, 5_000]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_every_text_the_model_reads_is_checked_and_structure_is_not() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "rules", "name": "NAME-1"},
            {"role": "user", "content": [
                {"type": "input_text", "text": "UNKNOWN-TYPE-2"},
                {"type": "refusal", "refusal": "REFUSAL-PART-3"},
                {"type": "file", "file": {"filename": "FILENAME-4.txt",
                                          "file_data": "data:text/plain;base64," + _b64(b"FILE-TEXT-5")}},
                {"type": "image_url", "image_url": {"url": "https://img.example/IMAGE-URL-X"}},
                {"type": "input_audio", "input_audio": {"data": "AUDIO-DATA-X", "format": "wav"}}]},
            {"role": "assistant", "content": None, "refusal": "REFUSAL-FIELD-6", "tool_calls": [
                {"id": "CALL-ID-X", "type": "function",
                 "function": {"name": "lookup", "arguments": '{"q": "ARGUMENTS-7"}'}}]},
            {"role": "tool", "tool_call_id": "CALL-ID-X", "content": "result"}],
        "tools": [{"type": "function", "function": {
            "name": "lookup", "description": "TOOL-DESCRIPTION-8",
            "parameters": {"type": "object", "properties": {"PROPERTY-NAME-9": {
                "type": "string", "description": "PARAMETER-DESCRIPTION-10", "enum": ["ENUM-11"]}}}}}],
        "functions": [{"name": "old", "description": "FUNCTIONS-12"}],
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "answer", "description": "SCHEMA-DESCRIPTION-13",
            "schema": {"type": "object", "properties": {"x": {"description": "SCHEMA-PROPERTY-14"}}}}},
        "prediction": {"type": "content", "content": "PREDICTION-15"},
        "metadata": {"tag": "METADATA-X"}, "user": "USER-X", "tool_choice": "auto"}
    text = request_text(sc.OP_CHAT, body)
    for n, marker in enumerate(("NAME", "UNKNOWN-TYPE", "REFUSAL-PART", "FILENAME", "FILE-TEXT", "REFUSAL-FIELD",
                                "ARGUMENTS", "TOOL-DESCRIPTION", "PROPERTY-NAME", "PARAMETER-DESCRIPTION", "ENUM",
                                "FUNCTIONS", "SCHEMA-DESCRIPTION", "SCHEMA-PROPERTY", "PREDICTION"), start=1):
        assert f"{marker}-{n}" in text
    assert "-X" not in text  # ids, media, the gateway's own fields
    assert "user" not in text.split() and "function" not in text.split() and "object" not in text.split()


def test_a_completions_suffix_is_checked() -> None:
    assert request_text(sc.OP_TEXT_COMPLETION, {"prompt": ["a", "b"], "suffix": "end"}) == "a\n\nb\n\nend"


def test_file_data_is_read_as_the_text_it_encodes_and_binary_files_give_none() -> None:
    assert file_text("data:text/plain;base64," + _b64("héllo".encode())) == "héllo"
    assert file_text("data:application/octet-stream;base64," + _b64(b"plain words")) == "plain words"
    assert file_text("data:text/plain,percent%20encoded") == "percent encoded"
    assert file_text("data:application/pdf;base64," + _b64(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3 binary")) == ""
    assert file_text(_b64(b"bare base64 text")) == "bare base64 text"
    assert file_text("not base64, just words") == "not base64, just words"


def test_every_text_of_an_answer_is_checked() -> None:
    chat = {"choices": [{"index": 0, "message": {
        "role": "assistant", "content": None, "reasoning_content": "REASONING", "refusal": "REFUSED",
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": "ARGS"}'}}],
        "audio": {"id": "audio_1", "data": "QkFTRTY0", "transcript": "SPOKEN"}}}]}
    text = response_text(sc.OP_CHAT, chat)
    assert all(m in text for m in ("REASONING", "REFUSED", "ARGS", "SPOKEN"))
    assert "call_1" not in text and "QkFTRTY0" not in text and "assistant" not in text


def test_a_request_nested_thousands_deep_is_read_without_recursion() -> None:
    nested: object = "DEEP"
    for _ in range(20_000):
        nested = [nested]
    assert request_text(sc.OP_CHAT, {"messages": [{"role": "user", "content": nested}]}) == "DEEP"
