"""What text a request and an answer carry, and how a long text is cut."""

from __future__ import annotations

from app.moderation.texts import MAX_TEXT_CHARS, request_text, response_text, split_text
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
