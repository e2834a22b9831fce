"""Malformed and oversized upstream answers, end to end: the real server on loopback, the ``openai``
client, a scripted fake upstream, and the span read from the ``file`` destination.

Whatever the upstream sends, the client gets an OpenAI error it can read (a 502, or an error event
in a stream), the span says what happened, and the gateway goes on serving.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import OpenAI

from contracts import semconv as sc
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.spanlog import only
from tests.support.upstream import Behaviour, FakeOpenAI, chat

MAX_ANSWER = 16 * 1024
MAX_EVENT = 4096
TAG = sc.metadata_key("test")
DONE = b"data: [DONE]\n\n"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def gw(upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    config = {
        "model_list": [{"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o-mini",
                                                                "api_base": upstream.api_base, "api_key": "sk-up"}}],
        "litellm_settings": {"success_callback": ["file"], "failure_callback": ["file"]},
        "spangate_settings": {"max_upstream_response_bytes": MAX_ANSWER, "max_sse_event_bytes": MAX_EVENT},
    }
    with running_gateway(config, data_dir=tmp_path_factory.mktemp("answers")) as running:
        yield running


@pytest.fixture
def client(gw: RunningGateway) -> Iterator[OpenAI]:
    with OpenAI(base_url=gw.openai_base_url, api_key="anything", max_retries=0, timeout=10) as openai_client:
        yield openai_client


@pytest.fixture
def tag(request: pytest.FixtureRequest) -> str:
    return request.node.name


def span_of(gw: RunningGateway, tag: str) -> dict[str, Any]:
    return only(gw.wait_for_spans(1, where=lambda s: s["attributes"].get(TAG) == tag))


def sse_chunk(content: str, finish: str | None = None) -> bytes:
    body = {"id": "chatcmpl-e2e", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def stream_chat(client: OpenAI, tag: str) -> tuple[list[str], openai.APIError | None]:
    """The streamed pieces of content, and the error the client raised after them (if any)."""
    pieces: list[str] = []
    stream = client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": tag}], stream=True,
                                            extra_body={"metadata": {"test": tag}})
    try:
        for chunk in stream:
            pieces.extend(choice.delta.content or "" for choice in chunk.choices)
    except openai.APIError as exc:
        return pieces, exc
    return pieces, None


def assert_error_span(span: dict[str, Any], error_type: str, outcome: str | None = None) -> None:
    attrs = span["attributes"]
    assert span["status"]["code"] == "ERROR"
    assert attrs[sc.ERROR_TYPE] == error_type
    assert attrs.get(sc.STREAM_OUTCOME) == outcome


def test_a_malformed_chunk_ends_the_stream_with_an_error_event(gw: RunningGateway, client: OpenAI,
                                                               upstream: FakeOpenAI, tag: str) -> None:
    upstream.script(Behaviour(events=(sse_chunk("first"), b'data: {"id": "x", "choices": "x"}\n\n',
                                      sse_chunk("never"), DONE)))
    pieces, error = stream_chat(client, tag)
    assert pieces == ["first"]
    assert error is not None and error.code == "upstream_invalid_response"
    assert "'choices' is not a list" in error.message
    assert_error_span(span_of(gw, tag), "upstream_invalid_response", sc.STREAM_UPSTREAM_INVALID_RESPONSE)


@pytest.mark.parametrize("ending", ["whole", "endless"])
def test_an_sse_event_over_the_cap_ends_the_stream_with_an_error_event(
        gw: RunningGateway, client: OpenAI, upstream: FakeOpenAI, tag: str, ending: str) -> None:
    if ending == "whole":
        big: tuple[bytes, ...] = (b"data: " + b"x" * MAX_EVENT + b"\n\n", DONE)
    else:  # no blank line ever comes: the gateway must stop reading after about the cap
        big = (b"data: ",) + (b"y" * 1024,) * 64
    upstream.script(Behaviour(events=(sse_chunk("first"), *big)))
    pieces, error = stream_chat(client, tag)
    assert pieces == ["first"]
    assert error is not None and error.code == "upstream_response_too_large"
    assert f"over {MAX_EVENT} bytes (spangate_settings.max_sse_event_bytes)" in error.message
    assert_error_span(span_of(gw, tag), "upstream_response_too_large", sc.STREAM_UPSTREAM_INVALID_RESPONSE)


def test_a_stream_without_done_reaches_the_client_whole_and_the_span_says_so(
        gw: RunningGateway, client: OpenAI, upstream: FakeOpenAI, tag: str) -> None:
    upstream.script(Behaviour(events=(sse_chunk("all"), sse_chunk(" here", "stop"))))
    assert stream_chat(client, tag) == (["all", " here"], None)
    span = span_of(gw, tag)
    assert span["status"]["code"] == "OK"
    assert span["attributes"][sc.STREAM_OUTCOME] == sc.STREAM_ENDED_WITHOUT_DONE
    assert span["attributes"][sc.RESPONSE_FINISH_REASONS] == ["stop"]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_an_answer_over_the_cap_is_a_502_naming_the_limit_and_the_next_call_is_served(
        gw: RunningGateway, client: OpenAI, upstream: FakeOpenAI, tag: str, framing: str) -> None:
    huge = chat({"model": "gpt-4o-mini", "messages": [{"content": "z" * (4 * MAX_ANSWER)}]})
    upstream.script(Behaviour(body=json.dumps(huge).encode(), chunked=framing == "chunked"))
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": tag}],
                                       extra_body={"metadata": {"test": tag}})
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_response_too_large"
    assert f"larger than {MAX_ANSWER} bytes (spangate_settings.max_upstream_response_bytes)" in caught.value.message
    assert_error_span(span_of(gw, tag), "upstream_response_too_large")

    reply = client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": f"{tag} next"}])
    assert reply.choices[0].message.content == f"fake says: {tag} next"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("sent", "told"), [("7", "7"), ("86400000", "3600")])
def test_an_upstreams_retry_after_reaches_the_client_bounded(gw: RunningGateway, client: OpenAI, upstream: FakeOpenAI,
                                                            tag: str, stream: bool, sent: str, told: str) -> None:
    """A 429's Retry-After says when the upstream takes calls again: the client's SDK waits that long
    before it retries, so it is passed on (an hour at most), plain and streamed alike."""
    upstream.script(Behaviour(status=429, retry_after=sent))
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}], stream=stream,
                                       metadata={"test": tag})
    assert refused.value.response.headers.get("retry-after") == told
    assert span_of(gw, tag)["attributes"][sc.HTTP_STATUS_CODE] == 429


def test_an_error_without_retry_after_gets_none_invented(gw: RunningGateway, client: OpenAI, upstream: FakeOpenAI,
                                                        tag: str) -> None:
    upstream.script(Behaviour(status=429))
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}],
                                       metadata={"test": tag})
    assert "retry-after" not in refused.value.response.headers
