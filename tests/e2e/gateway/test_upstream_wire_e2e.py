"""What an upstream does on the wire that the gateway bounds: the size of an answer's head and the
time a call may take. The real server on loopback, the ``openai`` client, and raw-socket upstreams
(``tests.support.raw_upstream``) that write exactly the bytes a test scripts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.support.content_safety import ContentSafetyStandIn
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.raw_upstream import RawServer, fixed, held, huge_head, trickle, trickle_stream
from tests.support.upstream import chat, chat_events

PROMPT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
OK_BODY = json.dumps(chat(PROMPT)).encode()
MAX_RESPONSE_HEAD = 64 * 1024  # the documented cap (README, Security)


def deployment(name: str, server: RawServer, **params: Any) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": server.url + "/v1",
                                                   "api_key": "sk-up", **params}}


@pytest.fixture
def gateway_of(tmp_path: Path) -> Iterator[Any]:
    """``gateway_of(model_list, litellm_settings, **spangate_settings)``: one running gateway for the test."""
    stack: list[Any] = []

    def start(models: list[dict[str, Any]], litellm: dict[str, Any] | None = None, **settings: Any) -> RunningGateway:
        config = {"model_list": models, "litellm_settings": litellm or {}, "spangate_settings": settings}
        context = running_gateway(config, data_dir=tmp_path)
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


POOL = {"upstream_max_connections": 3, "upstream_max_connections_per_origin": 2, "upstream_pool_wait_seconds": 0.2}


def call_status(client: OpenAI, model: str) -> tuple[int, str | None]:
    try:
        call(client, model)
    except openai.APIStatusError as exc:
        return exc.status_code, exc.code
    return 200, None


def test_a_slow_upstream_holds_only_its_share_of_connections_and_a_call_over_it_is_a_quick_503(gateway_of) -> None:
    with RawServer(held(200, OK_BODY)) as slow, RawServer(fixed(200, OK_BODY)) as fast:
        gw = gateway_of([deployment("slow", slow), deployment("fast", fast)], **POOL)
        with client_of(gw) as client, ThreadPoolExecutor(2) as pool:
            holding = [pool.submit(call_status, client, "slow") for _ in range(2)]
            slow.wait_requests(2)
            assert call_status(client, "slow") == (503, "upstream_connections_busy")  # its origin's cap
            assert call(client, "fast").choices[0].message.content == "fake says: hi"  # a slot of its own
            slow.release.set()
            assert [f.result() for f in holding] == [(200, None), (200, None)]
        assert slow.requests == 2
        metrics = httpx.get(gw.base_url + "/metrics").text
    assert ('spangate_upstream_pool_timeouts_total{pool="deployments",server_address="127.0.0.1",'
            f'server_port="{slow.port}"}} 1') in metrics


def test_moderation_checks_inputs_while_every_model_connection_is_held(gateway_of) -> None:
    with RawServer(held(200, OK_BODY)) as slow, ContentSafetyStandIn() as cs:
        gw = gateway_of([deployment("slow", slow)], **{**POOL, "upstream_max_connections_per_origin": 3},
                        litellm={"callbacks": ["azure_content_safety"],
                                 "azure_content_safety_params": {"endpoint": cs.endpoint, "key": cs.key}})
        with client_of(gw) as client, ThreadPoolExecutor(3) as pool:
            holding = [pool.submit(call_status, client, "slow") for _ in range(3)]
            slow.wait_requests(3)  # every connection of the deployments' pool is held
            # Moderation has its own pool: the input is checked, then the model call finds no slot.
            assert call_status(client, "slow") == (503, "upstream_connections_busy")
            assert len(cs.requests) == 4
            slow.release.set()
            assert [f.result() for f in holding] == [(200, None)] * 3
