"""The mock provider answers offline, byte-for-byte repeatably, with usage a tokenizer would give."""

import json
from typing import Any

from app.config.settings import DeploymentConfig
from app.providers.mock import MockDeployment, count_tokens
from contracts import semconv as sc

CONFIG = DeploymentConfig("mock-gpt", "mock", "mock-gpt", "mock-gpt-0")
CHAT = {"model": "mock-gpt", "messages": [{"role": "system", "content": "Be nice."},
                                          {"role": "user", "content": "Tell me a joke"}]}


async def collect(mock: MockDeployment, operation: str, payload: dict[str, Any]) -> list[bytes]:
    handle = await mock.stream(operation, payload)
    return [event async for event in handle.chunks()]


def data(events: list[bytes]) -> list[Any]:
    return [json.loads(e[6:]) if e != b"data: [DONE]\n\n" else "[DONE]" for e in events]


async def test_chat_answer_is_deterministic_but_for_its_id_and_counts_tokens() -> None:
    first = await MockDeployment(CONFIG).complete(sc.OP_CHAT, dict(CHAT))
    second = await MockDeployment(CONFIG).complete(sc.OP_CHAT, dict(CHAT))
    body, again = json.loads(first.body), json.loads(second.body)
    # trace backends key calls by response id: the same prompt twice is two calls
    assert body.pop("id") != again.pop("id")
    assert body == again
    body = json.loads(first.body)
    answer = "This is a mock response from mock-gpt. You said: Tell me a joke"
    assert body["choices"] == [{"index": 0, "message": {"role": "assistant", "content": answer},
                                "finish_reason": "stop", "logprobs": None}]
    prompt = count_tokens("Be nice.") + count_tokens("Tell me a joke") + 2 * 4
    assert body["usage"] == {"prompt_tokens": prompt, "completion_tokens": count_tokens(answer),
                             "total_tokens": prompt + count_tokens(answer)}
    assert body["id"].startswith("chatcmpl-mock")


async def test_mock_response_is_the_answer() -> None:
    reply = await MockDeployment(CONFIG).complete(sc.OP_CHAT, {**CHAT, "mock_response": "42"})
    assert json.loads(reply.body)["choices"][0]["message"]["content"] == "42"


async def test_stream_rebuilds_the_same_answer_and_adds_usage_only_when_asked() -> None:
    mock = MockDeployment(CONFIG)
    full = json.loads((await mock.complete(sc.OP_CHAT, dict(CHAT))).body)
    plain = data(await collect(mock, sc.OP_CHAT, dict(CHAT)))
    assert plain[-1] == "[DONE]"
    chunks = plain[:-1]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == \
        full["choices"][0]["message"]["content"]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-mock")
    assert all("usage" not in c for c in chunks)
    with_usage = data(await collect(mock, sc.OP_CHAT, {**CHAT, "stream_options": {"include_usage": True}}))
    assert with_usage[-2] == {"id": with_usage[0]["id"], "object": "chat.completion.chunk", "created": full["created"],
                              "model": "mock-gpt", "choices": [], "usage": full["usage"]}


async def test_text_completion_and_embeddings() -> None:
    mock = MockDeployment(CONFIG)
    completion = json.loads((await mock.complete(sc.OP_TEXT_COMPLETION, {"prompt": "Once upon"})).body)
    assert completion["object"] == "text_completion"
    assert completion["choices"][0]["text"].endswith("You said: Once upon")
    embedded = json.loads((await mock.complete(sc.OP_EMBEDDINGS, {"input": ["a", "b"], "dimensions": 20})).body)
    vectors = [d["embedding"] for d in embedded["data"]]
    assert [len(v) for v in vectors] == [20, 20]
    assert vectors[0] != vectors[1]
    again = json.loads((await mock.complete(sc.OP_EMBEDDINGS, {"input": "a", "dimensions": 20})).body)
    assert again["data"][0]["embedding"] == vectors[0]
    assert embedded["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


def test_token_count_approximates_four_characters_a_token() -> None:
    assert [count_tokens(t) for t in ("", "a", "abcd", "abcde", "x" * 400)] == [0, 1, 1, 2, 100]
