"""``vertex_ai/claude-...`` end to end: the real gateway on loopback, a config naming a Claude model
on Vertex AI pointed at the Gemini fake's Vertex endpoints (``rawPredict``, ``streamRawPredict`` and
its token endpoint, proven with anthropic's ``AnthropicVertex``), driven with the ``openai`` client;
the spans read from the ``file`` destination."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import OpenAI

from contracts import semconv as sc
from tests.support.fake_gemini import FakeGemini, Fault, google_error
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.spanlog import only

MODEL = "claude-haiku-4-5@20251001"  # genai-prices (google, Vertex's table): $1 in, $5 out, $0.10 cache reads
TAG = sc.metadata_key("test")
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The forecast",
                                            "parameters": {"type": "object", "properties": {"city": {}}}}}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as running:
        yield running


@pytest.fixture(scope="module")
def gw(fake: FakeGemini, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    config = {
        "model_list": [{"model_name": "vclaude", "litellm_params": {
            "model": f"vertex_ai/{MODEL}", "vertex_project": "proj-e2e", "vertex_location": "us-east5",
            "vertex_credentials": json.dumps(fake.service_account("proj-e2e")), "api_base": fake.url}}],
        "litellm_settings": {"success_callback": ["file"], "failure_callback": ["file"]},
    }
    with running_gateway(config, env={}, data_dir=tmp_path_factory.mktemp("vclaude")) as running:
        yield running


@pytest.fixture
def client(gw: RunningGateway) -> Iterator[OpenAI]:
    with OpenAI(base_url=gw.openai_base_url, api_key="anything", max_retries=0, timeout=10) as sdk:
        yield sdk


@pytest.fixture
def tag(request: pytest.FixtureRequest) -> str:
    return request.node.name.replace("[", "-").rstrip("]")


def meta(tag: str, **more: Any) -> dict[str, Any]:
    return {"metadata": {"test": tag, **more}}


def span_of(gw: RunningGateway, tag: str) -> dict[str, Any]:
    return only(gw.wait_for_spans(1, where=lambda s: s["attributes"].get(TAG) == tag))


def test_a_plain_answer_its_usage_and_its_span(gw: RunningGateway, client: OpenAI, fake: FakeGemini,
                                               tag: str) -> None:
    reply = client.chat.completions.create(
        model="vclaude", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": tag}],
        temperature=0.2, extra_body=meta(tag))
    assert reply.choices[0].message.content == f"fake claude says: {tag}"
    assert reply.choices[0].finish_reason == "stop"
    usage = reply.usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (19, 4, 23)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 5
    [sent] = [r for r in fake.requests if tag in json.dumps(r.body)]
    assert sent.path == f"/v1/projects/proj-e2e/locations/us-east5/publishers/anthropic/models/{MODEL}:rawPredict"
    assert sent.body == {"anthropic_version": "vertex-2023-10-16", "system": [{"type": "text", "text": "Be brief."}],
                         "messages": [{"role": "user", "content": [{"type": "text", "text": tag}]}],
                         "max_tokens": 64_000, "temperature": 0.2}
    attrs = span_of(gw, tag)["attributes"]
    expected = {sc.PROVIDER_NAME: "gcp.vertex_ai", sc.REQUEST_MODEL: "vclaude", sc.RESPONSE_MODEL: MODEL,
                sc.RESPONSE_FINISH_REASONS: ["stop"], sc.USAGE_INPUT_TOKENS: 19, sc.USAGE_OUTPUT_TOKENS: 4,
                sc.USAGE_CACHE_READ_INPUT_TOKENS: 5, sc.USAGE_CACHE_WRITE_INPUT_TOKENS: 3}
    assert {k: attrs.get(k) for k in expected} == expected
    assert attrs[sc.USAGE_COST] == pytest.approx(14 * 1e-6 + 5 * 0.1e-6 + 4 * 5e-6)


@pytest.mark.parametrize("include_usage", [True, False], ids=["usage", "no-usage"])
def test_a_stream_with_the_usage_chunk_when_asked(gw: RunningGateway, client: OpenAI, tag: str,
                                                 include_usage: bool) -> None:
    chunks = list(client.chat.completions.create(
        model="vclaude", messages=[{"role": "user", "content": tag}], stream=True,
        stream_options={"include_usage": include_usage}, extra_body=meta(tag)))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"fake claude says: {tag}"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = [c.usage for c in chunks if c.usage is not None]
    assert [(u.prompt_tokens, u.completion_tokens) for u in usage] == ([(19, 4)] if include_usage else [])
    attrs = span_of(gw, tag)["attributes"]
    assert (attrs[sc.STREAM_OUTCOME], attrs[sc.USAGE_INPUT_TOKENS], attrs[sc.USAGE_OUTPUT_TOKENS],
            attrs[sc.PROVIDER_NAME]) == ("completed", 19, 4, "gcp.vertex_ai")


def test_a_tool_call_and_its_result_round_trip(client: OpenAI, tag: str) -> None:
    asked = [{"role": "user", "content": f"weather? {tag}"}]
    first = client.chat.completions.create(model="vclaude", messages=asked, tools=[WEATHER], extra_body=meta(tag))
    [call] = first.choices[0].message.tool_calls or []
    assert first.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    answered = [*asked, first.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    second = client.chat.completions.create(model="vclaude", messages=answered, tools=[WEATHER])
    assert second.choices[0].message.content == "fake claude says: sunny"


def test_vertexs_429_and_claudes_400_keep_their_status_in_openai_error_json(
        gw: RunningGateway, client: OpenAI, fake: FakeGemini, tag: str) -> None:
    fake.script(Fault(429, google_error(429, "Quota exceeded for online_prediction_requests_per_base_model",
                                        "RESOURCE_EXHAUSTED")),
                Fault(400, {"type": "error", "error": {"type": "invalid_request_error", "message": "prompt too long"}}))
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="vclaude", messages=[{"role": "user", "content": tag}],
                                       extra_body=meta(tag))
    assert limited.value.status_code == 429 and isinstance(limited.value.body, dict)
    assert limited.value.body["code"] == "RESOURCE_EXHAUSTED" and "Quota exceeded" in limited.value.body["message"]
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="vclaude", messages=[{"role": "user", "content": "x"}])
    assert isinstance(refused.value.body, dict) and refused.value.body["type"] == "invalid_request_error"
    assert span_of(gw, tag)["attributes"][sc.HTTP_STATUS_CODE] == 429


def test_no_credential_reaches_a_client_a_span_or_a_log(gw: RunningGateway, client: OpenAI, fake: FakeGemini,
                                                        tag: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen = [client.chat.completions.with_raw_response.create(
        model="vclaude", messages=[{"role": "user", "content": "x"}],
        extra_body=meta(tag, log_raw_request=True)).text]
    raw = span_of(gw, tag)["attributes"][sc.metadata_key("raw_request")]
    assert ":rawPredict" in raw and "authorization: ***" in raw.lower()
    private_key = fake.service_account()["private_key"]
    everything = "\n".join([*seen, json.dumps(gw.spans()), caplog.text])
    assert fake.tokens and [s for s in (private_key[40:72], *fake.tokens) if s in everything] == []
