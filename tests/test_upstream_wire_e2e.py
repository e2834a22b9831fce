"""What an upstream does on the wire that the gateway bounds: the size of an answer's head and the
time a call may take. The real server on loopback, the ``openai`` client, and raw-socket upstreams
(``tests.support.raw_upstream``) that write exactly the bytes a test scripts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.support.gateway import RunningGateway, running_gateway
from tests.support.raw_upstream import RawServer, fixed, huge_head, trickle, trickle_stream
from tests.support.upstream import chat, chat_events

PROMPT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
OK_BODY = json.dumps(chat(PROMPT)).encode()
MAX_RESPONSE_HEAD = 64 * 1024  # the documented cap (README, Security)


def deployment(name: str, server: RawServer, **params: Any) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": server.url + "/v1",
                                                   "api_key": "sk-up", **params}}


@pytest.fixture
def gateway_of(tmp_path: Path) -> Iterator[Any]:
    """``gateway_of(model_list, **spangate_settings)``: one running gateway for the test."""
    stack: list[Any] = []

    def start(models: list[dict[str, Any]], **settings: Any) -> RunningGateway:
        context = running_gateway({"model_list": models, "spangate_settings": settings}, data_dir=tmp_path)
        stack.append(context)
        return context.__enter__()

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


def client_of(gw: RunningGateway) -> OpenAI:
    return OpenAI(base_url=gw.openai_base_url, api_key="anything", max_retries=0, timeout=10)


def call(client: OpenAI, model: str) -> Any:
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])


def test_an_answer_head_over_the_cap_is_a_502_its_connection_dropped_and_the_next_call_served(gateway_of) -> None:
    # 16 MiB of header lines, then a well-framed 200: before the cap the gateway read it all and passed it on.
    end = b"Content-Length: %d\r\n\r\n%b" % (len(OK_BODY), OK_BODY)
    with RawServer(huge_head(16 << 20, end)) as upstream:
        gw = gateway_of([deployment("gpt", upstream)])
        with client_of(gw) as client:
            with pytest.raises(openai.APIStatusError) as caught:
                call(client, "gpt")
            assert caught.value.status_code == 502
            assert caught.value.code == "upstream_invalid_response"
            assert f"has a head larger than {MAX_RESPONSE_HEAD} bytes" in caught.value.message
            upstream.wait_dropped(1)  # the gateway closed the connection: the rest was never read

            upstream.script = fixed(200, OK_BODY)
            assert call(client, "gpt").choices[0].message.content == "fake says: hi"


def test_the_deployment_timeout_bounds_the_whole_call_not_each_read(gateway_of) -> None:
    # Every byte comes well within the timeout; the whole answer would take ~3 s, six times it.
    with RawServer(trickle(OK_BODY[:30], every=0.1)) as upstream:
        gw = gateway_of([deployment("gpt", upstream, timeout=0.5)])
        with client_of(gw) as client, pytest.raises(openai.APIStatusError) as caught:
            call(client, "gpt")
    assert caught.value.status_code == 504
    assert caught.value.code == "upstream_timeout"
    assert "did not answer within 0.5s" in caught.value.message


def test_a_stream_may_outlast_the_timeout_while_its_bytes_keep_coming(gateway_of) -> None:
    # The deadline is the call's; a stream is bounded until its head, then per wait for more bytes.
    events = chat_events(PROMPT)  # 6 events, 0.1 s apart: the stream takes longer than the timeout
    with RawServer(trickle_stream(events, every=0.1)) as upstream:
        gw = gateway_of([deployment("gpt", upstream, timeout=0.5)])
        with client_of(gw) as client:
            stream = client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}],
                                                    stream=True)
            text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "fake says: hi"
