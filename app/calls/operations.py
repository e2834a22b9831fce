"""The operations the gateway serves, and the one table of what differs between them.

An ``Operation`` is a ``StrEnum``: its value is the ``gen_ai.operation.name`` a span and a metric
carry, so it compares and hashes like that string (moderation and LiteLLM's callbacks keep reading
``call.operation == "chat"``). Every per-operation fact the front door, the proxy, the span and the
providers need is a field of ``OperationFacts`` here, not a dictionary of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from contracts import semconv as sc


class Operation(StrEnum):
    CHAT = sc.OP_CHAT
    TEXT_COMPLETION = sc.OP_TEXT_COMPLETION
    EMBEDDINGS = sc.OP_EMBEDDINGS

    @property
    def facts(self) -> OperationFacts:
        return _FACTS[self]


@dataclass(frozen=True, slots=True)
class OperationFacts:
    path: str  # OpenAI's path, after the API base: served with and without /v1, sent upstream as is
    call_type: str  # LiteLLM's call type on the span (gen_ai.call_type)
    required: str  # the body field the operation cannot go without: the messages, or the text in
    streams: bool  # whether ``"stream": true`` is honoured (embeddings answer whole)
    answer_object: str  # the ``object`` of a whole answer (and of a stream assembled into one)
    chunk_object: str | None  # the ``object`` of a stream's chunks


# Keyed by the members, which hash as their names: ``facts("chat")`` finds chat's too.
_FACTS: dict[str, OperationFacts] = {
    Operation.CHAT: OperationFacts("/chat/completions", "acompletion", "messages", streams=True,
                                   answer_object="chat.completion", chunk_object="chat.completion.chunk"),
    Operation.TEXT_COMPLETION: OperationFacts("/completions", "atext_completion", "prompt", streams=True,
                                              answer_object="text_completion", chunk_object="text_completion"),
    Operation.EMBEDDINGS: OperationFacts("/embeddings", "aembedding", "input", streams=False,
                                         answer_object="list", chunk_object=None),
}


def facts(operation: str) -> OperationFacts:
    """An operation's facts, from the member or from its name (tests and tools pass the name)."""
    return _FACTS[operation]


def routes() -> dict[str, Operation]:
    """The front door's POST paths (no trailing slash): OpenAI's, with and without ``/v1``."""
    table: dict[str, Operation] = {}
    for operation in Operation:
        table["/v1" + operation.facts.path] = table[operation.facts.path] = operation
    return table
