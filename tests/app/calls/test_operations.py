"""The one table of per-operation facts, and the names the rest of the gateway reads from it."""

from __future__ import annotations

import json

from app.calls.operations import Operation, facts, routes
from contracts import semconv as sc


def test_an_operation_is_its_semconv_name_wherever_a_name_is_read() -> None:
    assert [op.value for op in Operation] == [sc.OP_CHAT, sc.OP_TEXT_COMPLETION, sc.OP_EMBEDDINGS]
    assert Operation(sc.OP_EMBEDDINGS) is Operation.EMBEDDINGS
    assert (Operation.CHAT == "chat", f"{Operation.CHAT} m", json.dumps(Operation.CHAT)) == (True, "chat m", '"chat"')
    assert type(Operation.CHAT.value) is str


def test_facts_are_found_by_member_and_by_name() -> None:
    assert facts("text_completion") is Operation.TEXT_COMPLETION.facts
    assert [(op.facts.call_type, op.facts.required, op.facts.streams) for op in Operation] == [
        ("acompletion", "messages", True), ("atext_completion", "prompt", True), ("aembedding", "input", False)]
    assert [(op.facts.answer_object, op.facts.chunk_object) for op in Operation] == [
        ("chat.completion", "chat.completion.chunk"), ("text_completion", "text_completion"), ("list", None)]


def test_the_front_door_serves_each_path_with_and_without_v1() -> None:
    assert routes() == {"/v1/chat/completions": Operation.CHAT, "/chat/completions": Operation.CHAT,
                        "/v1/completions": Operation.TEXT_COMPLETION, "/completions": Operation.TEXT_COMPLETION,
                        "/v1/embeddings": Operation.EMBEDDINGS, "/embeddings": Operation.EMBEDDINGS}
