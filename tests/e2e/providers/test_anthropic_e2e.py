"""``anthropic/`` deployments end to end: the real gateway on loopback, the ``openai`` client, the fake
Messages API (``tests/support/fake_anthropic.py``), and the spans the ``file`` destination wrote.

One gateway serves the module; each test tags its call (``metadata.test``) and finds its span by it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import OpenAI

from contracts import semconv as sc
from tests.support.fake_anthropic import KEY, FakeAnthropic, Reply
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.spanlog import only
from tests.support.upstream import FakeOpenAI

ENV_KEY = "sk-ant-api03-FromTheEnvironment0123456789"
TAG = sc.metadata_key("test")
MODEL = "claude-haiku-4-5"  # $1 / $5 per MTok, cache reads $0.10 (genai-prices)
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The forecast",
                                            "parameters": {"type": "object", "properties": {"city": {}}}}}


def anthropic_model(name: str, fake: FakeAnthropic, **params: Any) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": f"anthropic/{MODEL}", "api_base": fake.url, **params}}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(KEY, ENV_KEY) as running:
        yield running


@pytest.fixture(scope="module")
def busy() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as running:
        yield running


@pytest.fixture(scope="module")
def gw(fake: FakeAnthropic, busy: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory,
       ) -> Iterator[RunningGateway]:
    with FakeOpenAI() as fallback:
        config = {
            "model_list": [
                anthropic_model("claude", fake, api_key=KEY),
                anthropic_model("claude-env", fake),  # ANTHROPIC_API_KEY
                anthropic_model("claude-fo", busy, api_key=KEY),
                {"model_name": "claude-fo", "litellm_params": {"model": "openai/gpt-4o-mini",
                                                               "api_base": fallback.api_base, "api_key": "sk-x"}},
            ],
            "litellm_settings": {"success_callback": ["file"], "failure_callback": ["file"]},
        }
        env = {"ANTHROPIC_API_KEY": ENV_KEY}
        with running_gateway(config, env=env, data_dir=tmp_path_factory.mktemp("anthropic")) as running:
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


def sent(fake: FakeAnthropic, tag: str) -> Any:
    [match] = [r for r in fake.requests if tag in json.dumps(r.body)]
    return match


def test_a_chat_call_is_a_messages_call_answered_in_openai_shape(gw: RunningGateway, client: OpenAI,
                                                                 fake: FakeAnthropic, tag: str) -> None:
    reply = client.chat.completions.create(
        model="claude", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": tag}],
        max_tokens=50, temperature=0.2, stop=["\n\n"], user="end-user-7", extra_body=meta(tag))
    assert reply.choices[0].message.content == f"fake claude says: {tag}"
    assert reply.choices[0].finish_reason == "stop" and reply.model == MODEL and reply.id == "msg_fake01"
    usage = reply.usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (19, 4, 23)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 5

    request = sent(fake, tag)
    assert (request.headers["x-api-key"], request.headers["anthropic-version"]) == (KEY, "2023-06-01")
    assert request.body == {"model": MODEL, "system": [{"type": "text", "text": "Be brief."}],
                            "messages": [{"role": "user", "content": [{"type": "text", "text": tag}]}],
                            "max_tokens": 50, "temperature": 0.2, "stop_sequences": ["\n\n"],
                            "metadata": {"user_id": "end-user-7"}}

    attrs = span_of(gw, tag)["attributes"]
    expected = {sc.PROVIDER_NAME: "anthropic", sc.REQUEST_MODEL: "claude", sc.RESPONSE_MODEL: MODEL,
                sc.RESPONSE_ID: "msg_fake01", sc.RESPONSE_FINISH_REASONS: ["stop"], sc.USAGE_INPUT_TOKENS: 19,
                sc.USAGE_OUTPUT_TOKENS: 4, sc.USAGE_CACHE_READ_INPUT_TOKENS: 5,
                sc.USAGE_CACHE_WRITE_INPUT_TOKENS: 3, sc.SERVER_ADDRESS: "127.0.0.1"}
    assert {k: attrs.get(k) for k in expected} == expected
    # genai-prices' haiku 4.5: the 14 uncached prompt tokens (cache writes among them) at the input price
    assert attrs[sc.USAGE_COST] == pytest.approx(14 * 1e-6 + 5 * 0.1e-6 + 4 * 5e-6)


def test_the_key_comes_from_anthropic_api_key_and_max_tokens_from_the_model(
        client: OpenAI, fake: FakeAnthropic, tag: str) -> None:
    client.chat.completions.create(model="claude-env", messages=[{"role": "user", "content": tag}],
                                   extra_body=meta(tag))
    request = sent(fake, tag)
    assert request.headers["x-api-key"] == ENV_KEY and request.body["max_tokens"] == 64_000


@pytest.mark.parametrize("include_usage", [True, False], ids=["usage", "no-usage"])
def test_a_stream_is_relayed_as_openai_chunks_with_usage_when_asked(
        gw: RunningGateway, client: OpenAI, tag: str, include_usage: bool) -> None:
    chunks = list(client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": tag}], stream=True,
        stream_options={"include_usage": include_usage}, extra_body=meta(tag)))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"fake claude says: {tag}"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = [c.usage for c in chunks if c.usage is not None]
    if include_usage:
        assert [(u.prompt_tokens, u.completion_tokens) for u in usage] == [(19, 4)] and chunks[-1].choices == []
    else:
        assert usage == []
    attrs = span_of(gw, tag)["attributes"]
    assert (attrs[sc.STREAM_OUTCOME], attrs[sc.USAGE_INPUT_TOKENS], attrs[sc.USAGE_OUTPUT_TOKENS],
            attrs[sc.RESPONSE_FINISH_REASONS], attrs[sc.PROVIDER_NAME]) == ("completed", 19, 4, ["stop"], "anthropic")


def test_tools_tool_calls_and_tool_results_round_trip(gw: RunningGateway, client: OpenAI, tag: str) -> None:
    asked = [{"role": "user", "content": f"weather? {tag}"}]
    first = client.chat.completions.create(model="claude", messages=asked, tools=[WEATHER], tool_choice="auto",
                                           extra_body=meta(tag))
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls is not None
    [call] = choice.message.tool_calls
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "toolu_fake01", "get_weather", {"city": "Paris", "days": 2})
    answered = [*asked, choice.message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    second = client.chat.completions.create(model="claude", messages=answered, tools=[WEATHER],
                                            extra_body=meta(tag + "-2"))
    assert second.choices[0].message.content == "fake claude says: sunny"
    assert span_of(gw, tag)["attributes"][sc.RESPONSE_FINISH_REASONS] == ["tool_calls"]


def test_a_streamed_tool_call_arrives_as_openai_tool_call_deltas(client: OpenAI, tag: str) -> None:
    chunks = list(client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": tag}], tools=[WEATHER], stream=True,
        extra_body=meta(tag)))
    deltas = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or ()]
    assert (deltas[0].id, deltas[0].function.name) == ("toolu_fake01", "get_weather")
    assert json.loads("".join(d.function.arguments or "" for d in deltas)) == {"city": "Paris", "days": 2}


def test_an_upstream_429_is_openai_error_json_with_its_status_and_no_key(
        gw: RunningGateway, client: OpenAI, fake: FakeAnthropic, tag: str) -> None:
    fake.script(Reply(status=429, message="Number of request tokens has exceeded your rate limit (key {key})",
                      headers={"retry-after": "7"}))
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="claude", messages=[{"role": "user", "content": tag}],
                                       extra_body=meta(tag))
    error = caught.value.body
    assert caught.value.status_code == 429 and isinstance(error, dict)
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_error")
    assert caught.value.response.headers.get("retry-after") == "7"  # Anthropic's, passed on
    assert "exceeded your rate limit" in error["message"] and KEY[:12] not in error["message"]
    span = span_of(gw, tag)
    assert span["status"]["code"] == "ERROR" and span["attributes"][sc.HTTP_STATUS_CODE] == 429
    assert KEY[:12] not in json.dumps(span)


def test_an_upstream_400_keeps_its_status_and_type(client: OpenAI, fake: FakeAnthropic, tag: str) -> None:
    fake.script(Reply(status=400, message="messages.0.content: prompt is too long"))
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="claude", messages=[{"role": "user", "content": tag}],
                                       extra_body=meta(tag))
    assert isinstance(caught.value.body, dict) and caught.value.body["type"] == "invalid_request_error"
    assert "prompt is too long" in caught.value.body["message"]


def test_a_param_anthropic_lacks_is_a_400_naming_it_and_nothing_is_sent(
        client: OpenAI, fake: FakeAnthropic, tag: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="claude", messages=[{"role": "user", "content": tag}], n=2,
                                       extra_body=meta(tag))
    assert isinstance(caught.value.body, dict)
    assert (caught.value.body["param"], caught.value.body["code"]) == ("n", "unsupported_parameter")
    assert not [r for r in fake.requests if tag in json.dumps(r.body)]


def test_an_error_event_in_the_stream_ends_it_with_an_openai_error(
        gw: RunningGateway, client: OpenAI, fake: FakeAnthropic, tag: str) -> None:
    fake.script(Reply(stream_error="overloaded_error", stream_error_after=4))
    with pytest.raises(openai.APIError, match="Overloaded"):
        list(client.chat.completions.create(model="claude", messages=[{"role": "user", "content": tag}],
                                            stream=True, extra_body=meta(tag)))
    attrs = span_of(gw, tag)["attributes"]
    assert (attrs[sc.STREAM_OUTCOME], attrs[sc.ERROR_TYPE]) == ("upstream_error", "overloaded_error")


def test_a_429_from_anthropic_fails_over_to_another_deployment_of_the_name(
        client: OpenAI, busy: FakeAnthropic, tag: str) -> None:
    busy.script(*[Reply(status=429, message="busy")] * 2)
    answers = [client.chat.completions.create(model="claude-fo", messages=[{"role": "user", "content": f"{tag}{i}"}],
                                              extra_body=meta(f"{tag}{i}")) for i in range(2)]
    assert [a.choices[0].message.content for a in answers] == [f"fake says: {tag}{i}" for i in range(2)]
    assert busy.requests  # round robin: one of the two calls tried Anthropic first and was refused


def test_no_credential_reaches_the_client_the_spans_or_the_logs(
        gw: RunningGateway, client: OpenAI, fake: FakeAnthropic, busy: FakeAnthropic, tag: str,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    busy.script(*[Reply(status=429, message="too many calls with {key}")] * 2)
    for i in range(2):  # a fail-over is what the gateway logs of an upstream error
        client.chat.completions.create(model="claude-fo", messages=[{"role": "user", "content": "x"}],
                                       extra_body=meta(f"{tag}-fo{i}"))
    assert [r for r in caplog.records if r.name.startswith("app.") and "trying the next one" in r.getMessage()]
    seen = []
    for stream in (False, True):
        fake.script(Reply(status=401, message="invalid x-api-key {key}"))
        with pytest.raises(openai.AuthenticationError) as caught:
            list(client.chat.completions.create(model="claude", messages=[{"role": "user", "content": tag}],
                                                stream=stream, extra_body=meta(f"{tag}-{stream}")))
        seen.append(json.dumps(caught.value.body))
    reply = client.chat.completions.with_raw_response.create(
        model="claude", messages=[{"role": "user", "content": tag}],
        extra_body=meta(f"{tag}-raw", log_raw_request=True))
    seen.append(reply.text)
    raw = span_of(gw, f"{tag}-raw")["attributes"][sc.metadata_key("raw_request")]
    assert "x-api-key: ***" in raw and "/v1/messages" in raw
    for part in (*seen, gw.span_log_path.read_text(), caplog.text):
        assert KEY not in part and KEY[-12:] not in part and ENV_KEY[-12:] not in part
