"""The real server on loopback, driven by the official ``openai`` client; spans read from the ``file`` destination.

One gateway serves the module (starting one costs ~0.5 s); each test tags its call with
``metadata.test`` and finds its own span by that tag, so tests do not depend on each other's spans.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI, AuthenticationError, OpenAI

from contracts import semconv as sc
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.otlp import OtlpSink
from tests.support.spanlog import only
from tests.support.upstream import USAGE, Behaviour, FakeOpenAI, Received, closed_port

UPSTREAM_KEY = "sk-upstream-secret-000111222"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
# gpt-4o-mini per token: input 0.15e-6, cached input 0.075e-6, output 0.60e-6 (genai-prices)
FAKE_USAGE_COST = 9 * 0.15e-6 + 2 * 0.075e-6 + 7 * 0.60e-6
TAG = sc.metadata_key("test")


def openai_model(name: str, upstream: FakeOpenAI | str, model: str = "gpt-4o-mini", **info: Any) -> dict[str, Any]:
    base = upstream if isinstance(upstream, str) else upstream.api_base
    entry: dict[str, Any] = {"model_name": name, "litellm_params": {"model": f"openai/{model}", "api_base": base,
                                                                    "api_key": UPSTREAM_KEY}}
    if info:
        entry["model_info"] = info
    return entry


def mock_model(name: str, **info: Any) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": f"mock/{name}"}, "model_info": info}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def failing() -> Iterator[dict[int, FakeOpenAI]]:
    with FakeOpenAI(Behaviour(status=500)) as bad500, FakeOpenAI(Behaviour(status=429)) as bad429:
        yield {500: bad500, 429: bad429}


@pytest.fixture(scope="module")
def gw(upstream: FakeOpenAI, failing: dict[int, FakeOpenAI], tmp_path_factory: pytest.TempPathFactory,
       ) -> Iterator[RunningGateway]:
    refused = f"http://127.0.0.1:{closed_port()}/v1"
    config = {
        "model_list": [
            openai_model("gpt", upstream),
            openai_model("priced", upstream, model="house-model", input_cost_per_token=1e-6,
                         output_cost_per_token=2e-6),
            openai_model("text-embedding", upstream, model="text-embedding-3-small"),
            mock_model("mock-gpt"),
            mock_model("slow-mock", mock_chunk_delay=0.05),
            openai_model("fo-500", failing[500]), openai_model("fo-500", upstream),
            openai_model("fo-429", failing[429]), openai_model("fo-429", upstream),
            openai_model("fo-refused", refused), openai_model("fo-refused", upstream),
        ],
        "litellm_settings": {"success_callback": ["file"], "failure_callback": ["file"]},
    }
    with running_gateway(config, data_dir=tmp_path_factory.mktemp("gw")) as running:
        yield running


@pytest.fixture
def tag(request: pytest.FixtureRequest) -> str:
    return request.node.name


@pytest.fixture
def client(gw: RunningGateway) -> Iterator[OpenAI]:
    with OpenAI(base_url=gw.openai_base_url, api_key="anything", max_retries=0, timeout=10) as openai:
        yield openai


@pytest.fixture
async def aclient(gw: RunningGateway) -> Any:
    async with AsyncOpenAI(base_url=gw.openai_base_url, api_key="anything", max_retries=0, timeout=10) as openai:
        yield openai


def tagged(tag: str, **metadata: Any) -> dict[str, Any]:
    return {"metadata": {"test": tag, **metadata}}


def span_of(gw: RunningGateway, tag: str) -> dict[str, Any]:
    return only(gw.wait_for_spans(1, where=lambda s: s["attributes"].get(TAG) == tag))


def sent(upstream: FakeOpenAI, tag: str) -> Received:
    """What the upstream received for the call whose prompt carries ``tag``."""
    matches = [r for r in upstream.requests if tag in json.dumps(r.body)]
    assert len(matches) == 1, [r.body for r in upstream.requests]
    return matches[0]


def subset(attributes: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    return {k: attributes.get(k) for k in expected}


# --- chat ---------------------------------------------------------------------------------------


def test_sync_chat_is_one_client_span_with_genai_attributes(gw: RunningGateway, client: OpenAI,
                                                             upstream: FakeOpenAI, tag: str) -> None:
    reply = client.chat.completions.create(
        model="gpt", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": tag}],
        temperature=0.3, max_tokens=40, user="end-user-7",
        extra_body={"metadata": {"test": tag, "generation_name": "greeting", "trace_user_id": "u-9",
                                 "session_id": "s-1", "tags": ["prod", "web"], "custom": {"a": 1}}})
    assert reply.choices[0].message.content == f"fake says: {tag}"
    assert reply.usage is not None and reply.usage.prompt_tokens == 11

    span = span_of(gw, tag)
    assert (span["name"], span["kind"], span["status"]["code"]) == ("chat gpt", "CLIENT", "OK")
    attrs = span["attributes"]
    expected = {
        sc.OPERATION_NAME: "chat", sc.PROVIDER_NAME: "openai", sc.REQUEST_MODEL: "gpt",
        sc.REQUEST_TEMPERATURE: 0.3, sc.REQUEST_MAX_TOKENS: 40,
        sc.SERVER_ADDRESS: "127.0.0.1", sc.SERVER_PORT: int(upstream.url.rsplit(":", 1)[1]),
        sc.RESPONSE_ID: "chatcmpl-fake1", sc.RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        sc.RESPONSE_FINISH_REASONS: ["stop"], sc.USAGE_INPUT_TOKENS: 11, sc.USAGE_OUTPUT_TOKENS: 7,
        sc.USAGE_CACHE_READ_INPUT_TOKENS: 2, sc.USAGE_REASONING_OUTPUT_TOKENS: 3,
        sc.CALL_TYPE: "acompletion", sc.MODEL_GROUP: "gpt", sc.DEPLOYMENT_ID: "gpt-0",
        sc.END_USER: "end-user-7", sc.REQUESTER_IP: "127.0.0.1",
        sc.metadata_key("generation_name"): "greeting", sc.metadata_key("trace_user_id"): "u-9",
        sc.metadata_key("session_id"): "s-1", sc.metadata_key("tags"): ["prod", "web"],
        sc.metadata_key("custom"): '{"a":1}',
        sc.SYSTEM_INSTRUCTIONS: '[{"type":"text","content":"Be brief."}]',
        sc.INPUT_MESSAGES: json.dumps([{"role": "user", "parts": [{"type": "text", "content": tag}]}],
                                      separators=(",", ":")),
    }
    assert subset(attrs, expected) == expected
    assert attrs[sc.USAGE_COST] == pytest.approx(FAKE_USAGE_COST)
    assert json.loads(attrs[sc.OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": f"fake says: {tag}"}], "finish_reason": "stop"}]

    forwarded = sent(upstream, tag)
    assert forwarded.path == "/v1/chat/completions"
    assert "metadata" not in forwarded.body
    assert forwarded.body["user"] == "end-user-7"
    assert forwarded.body["model"] == "gpt-4o-mini"
    assert forwarded.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert "stream_options" not in forwarded.body


def test_model_info_prices_give_the_cost_and_model_info_is_recorded(gw: RunningGateway, client: OpenAI,
                                                                    tag: str) -> None:
    client.chat.completions.create(model="priced", messages=[{"role": "user", "content": tag}],
                                   extra_body=tagged(tag))
    attrs = span_of(gw, tag)["attributes"]
    assert attrs[sc.USAGE_COST] == pytest.approx(11 * 1e-6 + 7 * 2e-6)
    assert json.loads(attrs[sc.MODEL_INFO]) == {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}


async def test_async_chat_against_the_mock_provider(gw: RunningGateway, aclient: AsyncOpenAI, tag: str) -> None:
    reply = await aclient.chat.completions.create(model="mock-gpt", messages=[{"role": "user", "content": tag}],
                                                  extra_body=tagged(tag))
    assert reply.choices[0].message.content == f"This is a mock response from mock-gpt. You said: {tag}"
    attrs = span_of(gw, tag)["attributes"]
    assert reply.usage is not None
    assert subset(attrs, {sc.PROVIDER_NAME: 1, sc.RESPONSE_ID: 1, sc.USAGE_INPUT_TOKENS: 1,
                          sc.USAGE_OUTPUT_TOKENS: 1, sc.SERVER_ADDRESS: 1}) == {
        sc.PROVIDER_NAME: sc.PROVIDER_MOCK, sc.RESPONSE_ID: reply.id,
        sc.USAGE_INPUT_TOKENS: reply.usage.prompt_tokens, sc.USAGE_OUTPUT_TOKENS: reply.usage.completion_tokens,
        sc.SERVER_ADDRESS: "mock.spangate.local"}
    assert sc.USAGE_COST not in attrs  # a mock model has no price


def test_the_unprefixed_route_answers_too(gw: RunningGateway, tag: str) -> None:
    response = httpx.post(f"{gw.base_url}/chat/completions", json={
        "model": "mock-gpt", "messages": [{"role": "user", "content": tag}], "metadata": {"test": tag}})
    assert response.status_code == 200
    assert response.json()["object"] == "chat.completion"
    assert span_of(gw, tag)["name"] == "chat mock-gpt"


# --- streaming ----------------------------------------------------------------------------------


def test_stream_without_include_usage_hides_the_usage_chunk_but_records_usage(
        gw: RunningGateway, client: OpenAI, upstream: FakeOpenAI, tag: str) -> None:
    chunks = list(client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": tag}],
                                                 stream=True, extra_body=tagged(tag)))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"fake says: {tag}"
    assert all(c.usage is None and c.choices for c in chunks)
    assert sent(upstream, tag).body["stream_options"] == {"include_usage": True}

    attrs = span_of(gw, tag)["attributes"]
    expected = {sc.REQUEST_STREAM: True, sc.STREAM_OUTCOME: sc.STREAM_COMPLETED, sc.RESPONSE_ID: "chatcmpl-fakestream",
                sc.RESPONSE_FINISH_REASONS: ["stop"], sc.USAGE_INPUT_TOKENS: 11, sc.USAGE_OUTPUT_TOKENS: 7}
    assert subset(attrs, expected) == expected
    assert attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert attrs[sc.USAGE_COST] == pytest.approx(FAKE_USAGE_COST)
    assert json.loads(attrs[sc.OUTPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": f"fake says: {tag}"}]


async def test_async_stream_with_include_usage_passes_the_usage_chunk(gw: RunningGateway, aclient: AsyncOpenAI,
                                                                      tag: str) -> None:
    stream = await aclient.chat.completions.create(model="gpt", messages=[{"role": "user", "content": tag}],
                                                   stream=True, stream_options={"include_usage": True},
                                                   extra_body=tagged(tag))
    chunks = [c async for c in stream]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.model_dump(exclude_none=True) == USAGE
    attrs = span_of(gw, tag)["attributes"]
    assert subset(attrs, {sc.STREAM_OUTCOME: 1, sc.USAGE_OUTPUT_TOKENS: 1}) == {
        sc.STREAM_OUTCOME: sc.STREAM_COMPLETED, sc.USAGE_OUTPUT_TOKENS: 7}


def test_mock_stream_records_the_streamed_answer(gw: RunningGateway, client: OpenAI, tag: str) -> None:
    text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="mock-gpt", messages=[{"role": "user", "content": tag}], stream=True, extra_body=tagged(tag))
        if c.choices)
    attrs = span_of(gw, tag)["attributes"]
    assert attrs[sc.STREAM_OUTCOME] == sc.STREAM_COMPLETED
    assert json.loads(attrs[sc.OUTPUT_MESSAGES])[0]["parts"][0]["content"] == text
    assert attrs[sc.USAGE_OUTPUT_TOKENS] > 0


@pytest.mark.parametrize("source", ["mock", "upstream"])
def test_a_client_that_hangs_up_mid_stream_ends_the_span_as_disconnected(
        gw: RunningGateway, client: OpenAI, upstream: FakeOpenAI, tag: str, source: str) -> None:
    words = " ".join(f"w{i}" for i in range(100))  # 100 chunks at 50 ms: 5 s if the client stayed
    if source == "upstream":
        upstream.script(Behaviour(chunk_delay=0.05))
        model, body = "gpt", {"metadata": {"test": tag}}
    else:
        model, body = "slow-mock", {"metadata": {"test": tag}, "mock_response": words}
    stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"{tag} {words}"}],
                                            stream=True, extra_body=body)
    received = [next(iter(stream)) for _ in range(3)]
    assert len(received) == 3
    stream.close()

    span = span_of(gw, tag)
    assert span["attributes"][sc.STREAM_OUTCOME] == sc.STREAM_CLIENT_DISCONNECTED
    assert span["duration_ms"] < 4000
    assert "w99" not in span["attributes"].get(sc.OUTPUT_MESSAGES, "")


# --- trace context, other endpoints -------------------------------------------------------------


def test_a_w3c_traceparent_makes_the_gateway_span_a_child_and_the_upstream_its_child(
        gw: RunningGateway, client: OpenAI, upstream: FakeOpenAI, tag: str) -> None:
    client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": tag}], extra_body=tagged(tag),
                                   extra_headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    span = span_of(gw, tag)
    assert (span["trace_id"], span["parent_span_id"]) == (TRACE_ID, PARENT_ID)
    version, trace_id, parent_id, flags = sent(upstream, tag).headers["traceparent"].split("-")
    # No trace destination here, so no HTTP child span is made: the upstream's parent is the gateway span.
    assert (version, trace_id, parent_id, flags) == ("00", TRACE_ID, span["span_id"], "01")


@pytest.mark.parametrize("model", ["fo-500", "fo-429", "fo-refused"])
def test_failover_to_the_second_deployment(gw: RunningGateway, client: OpenAI, upstream: FakeOpenAI,
                                           failing: dict[int, FakeOpenAI], tag: str, model: str) -> None:
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": tag}],
                                           extra_body=tagged(tag))
    assert reply.choices[0].message.content == f"fake says: {tag}"
    attrs = span_of(gw, tag)["attributes"]
    assert (attrs[sc.DEPLOYMENT_ID], attrs[sc.SERVER_PORT]) == (f"{model}-1", int(upstream.url.rsplit(":", 1)[1]))
    assert span_of(gw, tag)["status"]["code"] == "OK"
    if model != "fo-refused":
        assert sent(failing[int(model[3:])], tag).body["model"] == "gpt-4o-mini"


def test_models_lists_the_configured_model_names(gw: RunningGateway, client: OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["gpt", "priced", "text-embedding", "mock-gpt", "slow-mock",
                                                    "fo-500", "fo-429", "fo-refused"]
    assert httpx.get(f"{gw.base_url}/models").json()["data"][0] == {"id": "gpt", "object": "model", "created": 0,
                                                                     "owned_by": "spangate"}


def test_text_completion(gw: RunningGateway, client: OpenAI, upstream: FakeOpenAI, tag: str) -> None:
    reply = client.completions.create(model="gpt", prompt=tag, max_tokens=5, extra_body=tagged(tag))
    assert reply.choices[0].text == f"fake says: {tag}"
    span = span_of(gw, tag)
    assert span["name"] == "text_completion gpt"
    expected = {sc.OPERATION_NAME: "text_completion", sc.CALL_TYPE: "atext_completion", sc.RESPONSE_ID: "cmpl-fake1",
                sc.RESPONSE_FINISH_REASONS: ["length"], sc.USAGE_INPUT_TOKENS: 11, sc.REQUEST_MAX_TOKENS: 5}
    assert subset(span["attributes"], expected) == expected
    assert sent(upstream, tag).path == "/v1/completions"


def test_embeddings(gw: RunningGateway, client: OpenAI, upstream: FakeOpenAI, tag: str) -> None:
    reply = client.embeddings.create(model="text-embedding", input=[tag, "b"], extra_body=tagged(tag))
    assert [len(d.embedding) for d in reply.data] == [8, 8]
    span = span_of(gw, tag)
    assert span["name"] == "embeddings text-embedding"
    expected = {sc.OPERATION_NAME: "embeddings", sc.EMBEDDINGS_DIMENSION_COUNT: 8, sc.USAGE_INPUT_TOKENS: 5,
                sc.RESPONSE_MODEL: "text-embedding-3-small", sc.REQUEST_ENCODING_FORMATS: ["base64"]}
    assert subset(span["attributes"], expected) == expected
    assert sc.OUTPUT_MESSAGES not in span["attributes"]
    assert sent(upstream, tag).path == "/v1/embeddings"


def test_health_probes(gw: RunningGateway) -> None:
    live = httpx.get(f"{gw.base_url}/health/liveliness")
    assert (live.status_code, live.json()) == (200, "I'm alive!")
    ready = httpx.get(f"{gw.base_url}/health/readiness")
    assert ready.status_code == 200
    assert ready.json()["status"] == "healthy"
    assert ready.json()["success_callbacks"] == ["file"]


# --- gateways with other settings ---------------------------------------------------------------


def test_turn_off_message_logging_keeps_content_off_the_span(tmp_path: Path) -> None:
    secret = "the-prompt-must-not-be-logged"
    config = {"model_list": [mock_model("mock-gpt")],
              "litellm_settings": {"callbacks": ["file"], "turn_off_message_logging": True}}
    with running_gateway(config, data_dir=tmp_path) as gateway, \
            OpenAI(base_url=gateway.openai_base_url, api_key="x", max_retries=0) as openai:
        messages = [{"role": "system", "content": secret}, {"role": "user", "content": secret}]
        answer = openai.chat.completions.create(model="mock-gpt", messages=messages)  # type: ignore[arg-type]
        assert secret in (answer.choices[0].message.content or "")  # the answer echoes it; the span must not
        list(openai.chat.completions.create(model="mock-gpt", messages=messages, stream=True))  # type: ignore
        spans = gateway.wait_for_spans(2)
    assert [s["attributes"].get(sc.USAGE_OUTPUT_TOKENS, 0) > 0 for s in spans] == [True, True]
    for span in spans:
        assert not {sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES, sc.SYSTEM_INSTRUCTIONS} & set(span["attributes"])
    assert secret not in gateway.span_log_path.read_text()


def test_master_key_is_required_when_set(tmp_path: Path) -> None:
    key = "sk-test-master-key-0123456789"
    config = {"model_list": [mock_model("mock-gpt")], "general_settings": {"master_key": key},
              "litellm_settings": {"callbacks": ["file"]}}
    chat = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}
    with running_gateway(config, data_dir=tmp_path) as gateway:
        url = f"{gateway.base_url}/v1/chat/completions"
        for headers in ({}, {"authorization": "Bearer sk-wrong-key-0000000000"}, {"authorization": key}):
            response = httpx.post(url, json=chat, headers=headers)
            assert response.status_code == 401, headers
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert (error["type"], error["code"]) == ("authentication_error", "invalid_api_key")
            assert key not in response.text
        with OpenAI(base_url=gateway.openai_base_url, api_key="sk-wrong", max_retries=0) as wrong, \
                pytest.raises(AuthenticationError) as info:
            wrong.models.list()
        assert info.value.status_code == 401
        with OpenAI(base_url=gateway.openai_base_url, api_key=key, max_retries=0) as right:
            assert right.chat.completions.create(**chat).choices[0].message.content  # type: ignore[call-overload]
            assert [m.id for m in right.models.list()] == ["mock-gpt"]
        assert httpx.get(f"{gateway.base_url}/health/liveliness").status_code == 200  # probes carry no key


def test_an_otel_destination_gets_the_gateway_span_and_its_upstream_http_child(
        tmp_path: Path, upstream: FakeOpenAI, tag: str) -> None:
    config = {"model_list": [openai_model("gpt", upstream)],
              "litellm_settings": {"success_callback": ["file", "otel"]},
              "environment_variables": {"OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=alpha"}}  # exported at start
    with OtlpSink() as sink:
        with running_gateway(config, data_dir=tmp_path, env={"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url}) as gateway, \
                OpenAI(base_url=gateway.openai_base_url, api_key="x", max_retries=0) as openai:
            openai.chat.completions.create(model="gpt", messages=[{"role": "user", "content": tag}],
                                           extra_body=tagged(tag))
            spans = sink.wait_for_spans(2)
        file_spans = gateway.spans()
    assert len(spans) == 2, [s["name"] for s in spans]
    assert {r.headers["x-tenant"] for r in sink.trace_requests()} == {"alpha"}
    [llm] = [s for s in spans if s["name"] == "chat gpt"]
    [child] = [s for s in spans if s is not llm]
    assert llm["attributes"][TAG] == tag
    assert (child["trace_id"], child["parent_span_id"], child["kind"]) == (llm["trace_id"], llm["span_id"], "CLIENT")
    http = child["attributes"]  # the stable HTTP names, which collectors' HTTP dashboards now read
    assert (http[sc.HTTP_REQUEST_METHOD], http[sc.HTTP_STATUS_CODE]) == ("POST", 200)
    assert http[sc.URL_FULL] == f"{upstream.api_base}/chat/completions"
    assert "http.method" not in http
    assert sc.OPERATION_NAME not in child["attributes"]
    assert [s["name"] for s in file_spans] == ["chat gpt"]  # LLM-log destinations get the call, not HTTP spans
    assert file_spans[0]["span_id"] == llm["span_id"]
    # With a trace destination the instrumentation propagates the HTTP child span upstream.
    version, trace_id, parent_id, _flags = sent(upstream, tag).headers["traceparent"].split("-")
    assert (version, trace_id, parent_id) == ("00", llm["trace_id"], child["span_id"])
