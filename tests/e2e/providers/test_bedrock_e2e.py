"""``bedrock/`` models end to end: the real gateway on loopback, the official ``openai`` client, the
Bedrock fake (SigV4 verified with botocore), moto's STS for an assumed role, spans from the ``file``
destination. One gateway serves the module; each test finds its own span by ``metadata.test``.
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
from tests.support.aws import moto_server
from tests.support.fake_bedrock import FakeBedrock, Reply, moto_sts_lookup
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.spanlog import only

REGION = "eu-west-1"
KEY_ID, SECRET, TOKEN = "AKIAE2EBEDROCK000001", "e2e/Bedrock+Secret=" + "q" * 21, "e2e-session-token-" + "z" * 40
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"  # in genai-prices: input 0.8, cached 0.08, output 4 $/Mtok
TAG = sc.metadata_key("test")
# The fake's usage: 11 fresh + 3 cache read + 2 cache write input tokens, 7 output; the write at the input price.
COST = (11 + 2) * 0.8e-6 + 3 * 0.08e-6 + 7 * 4e-6
WEATHER = {"type": "function", "function": {"name": "weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture(scope="module")
def sts() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock({KEY_ID: (SECRET, TOKEN)}, region=REGION, lookup=moto_sts_lookup) as running:
        yield running


@pytest.fixture(scope="module")
def gw(fake: FakeBedrock, sts: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    keys = {"aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET, "aws_region_name": REGION,
            "api_base": fake.url}
    config = {
        "model_list": [
            {"model_name": "claude", "litellm_params": {"model": f"bedrock/{MODEL}", "aws_session_token": TOKEN,
                                                        **keys}},
            {"model_name": "claude-role", "litellm_params": {
                "model": f"bedrock/{MODEL}", **keys, "aws_role_name": "arn:aws:iam::123456789012:role/gw",
                "aws_session_name": "spangate-e2e", "aws_sts_endpoint": sts}},
            {"model_name": "claude-role-fresh", "litellm_params": {  # first called with the log captured
                "model": f"bedrock/{MODEL}", **keys, "aws_role_name": "arn:aws:iam::123456789012:role/gw2",
                "aws_sts_endpoint": sts}},
        ],
        "litellm_settings": {"success_callback": ["file"], "failure_callback": ["file"]},
    }
    with running_gateway(config, data_dir=tmp_path_factory.mktemp("bedrock")) as running:
        yield running


@pytest.fixture
def client(gw: RunningGateway) -> Iterator[OpenAI]:
    with OpenAI(base_url=gw.openai_base_url, api_key="anything", max_retries=0, timeout=10) as c:
        yield c


@pytest.fixture
def tag(request: pytest.FixtureRequest) -> str:
    return request.node.name


def tagged(tag: str, **metadata: Any) -> dict[str, Any]:
    return {"metadata": {"test": tag, **metadata}}


def span_of(gw: RunningGateway, tag: str) -> dict[str, Any]:
    return only(gw.wait_for_spans(1, where=lambda s: s["attributes"].get(TAG) == tag))


def subset(attributes: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    return {k: attributes.get(k) for k in expected}


def test_a_chat_answer_with_usage_and_its_span(gw: RunningGateway, client: OpenAI, fake: FakeBedrock,
                                               tag: str) -> None:
    reply = client.chat.completions.create(
        model="claude", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": tag}],
        max_tokens=50, temperature=0.2, extra_body=tagged(tag))
    assert reply.choices[0].message.content == f"You said: {tag}"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (16, 7)
    assert reply.usage.prompt_tokens_details is not None and reply.usage.prompt_tokens_details.cached_tokens == 3
    seen = fake.requests[-1]
    assert seen.body["system"] == [{"text": "Be brief."}]
    assert seen.body["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.2}
    assert seen.headers["x-amz-security-token"] == TOKEN

    span = span_of(gw, tag)
    attrs = span["attributes"]
    expected = {sc.PROVIDER_NAME: "aws.bedrock", sc.REQUEST_MODEL: "claude", sc.RESPONSE_MODEL: MODEL,
                sc.RESPONSE_FINISH_REASONS: ["stop"], sc.USAGE_INPUT_TOKENS: 16, sc.USAGE_OUTPUT_TOKENS: 7,
                sc.USAGE_CACHE_READ_INPUT_TOKENS: 3, sc.USAGE_CACHE_CREATION_INPUT_TOKENS: 2,
                sc.SERVER_ADDRESS: "127.0.0.1"}
    assert subset(attrs, expected) == expected and span["status"]["code"] == "OK"
    assert attrs[sc.USAGE_COST] == pytest.approx(COST)


def test_a_stream_with_include_usage_ends_with_the_usage_chunk(gw: RunningGateway, client: OpenAI,
                                                               fake: FakeBedrock, tag: str) -> None:
    fake.script(Reply(text=f"streamed words for {tag}"))
    chunks = list(client.chat.completions.create(model="claude", messages=[{"role": "user", "content": tag}],
                                                 stream=True, stream_options={"include_usage": True},
                                                 extra_body=tagged(tag)))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"streamed words for {tag}"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 23
    assert fake.requests[-1].stream
    attrs = span_of(gw, tag)["attributes"]
    assert subset(attrs, {sc.USAGE_INPUT_TOKENS: 1, sc.RESPONSE_FINISH_REASONS: 1}) == {
        sc.USAGE_INPUT_TOKENS: 16, sc.RESPONSE_FINISH_REASONS: ["stop"]}


def test_a_stream_without_include_usage_hides_usage_but_the_span_has_it(gw: RunningGateway, client: OpenAI,
                                                                        tag: str) -> None:
    chunks = list(client.chat.completions.create(model="claude", messages=[{"role": "user", "content": tag}],
                                                 stream=True, extra_body=tagged(tag)))
    assert all(c.usage is None and c.choices for c in chunks)
    assert span_of(gw, tag)["attributes"][sc.USAGE_OUTPUT_TOKENS] == 7


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_tool_calls_and_their_results_round_trip(gw: RunningGateway, client: OpenAI, fake: FakeBedrock,
                                                 tag: str, stream: bool) -> None:
    fake.script(Reply(tool_uses=[{"toolUseId": "tooluse_A1", "name": "weather", "input": {"city": "Oslo"}}]))
    ask = [{"role": "user", "content": f"weather in Oslo? {tag}"}]
    answer = client.chat.completions.create(model="claude", messages=ask, tools=[WEATHER], tool_choice="required",
                                            stream=stream, extra_body=tagged(tag))
    if stream:
        chunks = list(answer)
        deltas = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
        call_id, name = deltas[0].id, deltas[0].function.name
        arguments = "".join(d.function.arguments or "" for d in deltas)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    else:
        [call] = answer.choices[0].message.tool_calls
        call_id, name, arguments = call.id, call.function.name, call.function.arguments
        finish = [answer.choices[0].finish_reason]
    assert (call_id, name, json.loads(arguments), finish) == ("tooluse_A1", "weather", {"city": "Oslo"},
                                                             ["tool_calls"])
    assert fake.requests[-1].body["toolConfig"]["toolChoice"] == {"any": {}}
    follow_up = [*ask, {"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": call_id, "content": "-3C and snow"}]
    final = client.chat.completions.create(model="claude", messages=follow_up, tools=[WEATHER])
    assert final.choices[0].finish_reason == "stop"  # the fake accepted the toolResult for its toolUse
    assert fake.requests[-1].body["messages"][2]["content"][0]["toolResult"]["toolUseId"] == "tooluse_A1"
    assert span_of(gw, tag)["attributes"][sc.RESPONSE_FINISH_REASONS] == ["tool_calls"]


@pytest.mark.parametrize(("status", "error_type", "raised"), [
    (429, "ThrottlingException", openai.RateLimitError), (400, "ValidationException", openai.BadRequestError),
    (403, "AccessDeniedException", openai.PermissionDeniedError)])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_upstream_errors_keep_their_status_in_openai_error_json(gw: RunningGateway, client: OpenAI,
                                                                fake: FakeBedrock, tag: str, status: int,
                                                                error_type: str, raised: type, stream: bool) -> None:
    fake.script(Reply(status=status, error_type=error_type, message=f"{error_type} says no"))
    with pytest.raises(raised) as caught:
        answer = client.chat.completions.create(model="claude", messages=[{"role": "user", "content": tag}],
                                                stream=stream, extra_body=tagged(tag))
        list(answer) if stream else None
    assert caught.value.status_code == status
    error = caught.value.body
    assert error_type in error["message"] and error["code"] == error_type
    span = span_of(gw, tag)
    assert span["status"]["code"] == "ERROR" and span["attributes"][sc.PROVIDER_NAME] == "aws.bedrock"


def test_an_exception_event_mid_stream_ends_it_with_an_error(gw: RunningGateway, client: OpenAI,
                                                             fake: FakeBedrock, tag: str) -> None:
    fake.script(Reply(text="a partial answer", stream_exception="modelStreamErrorException", message="model broke"))
    with pytest.raises(openai.APIError, match="model broke"):
        list(client.chat.completions.create(model="claude", messages=[{"role": "user", "content": tag}],
                                            stream=True, extra_body=tagged(tag)))
    assert span_of(gw, tag)["status"]["code"] == "ERROR"


def test_what_converse_cannot_take_is_a_400_before_anything_is_sent(client: OpenAI, fake: FakeBedrock) -> None:
    before = len(fake.requests)
    image = {"type": "image_url", "image_url": {"url": "https://example.test/cat.png"}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="claude", messages=[{"role": "user", "content": [image]}])
    assert caught.value.body["param"] == "messages[0].content[0].image_url.url"
    assert len(fake.requests) == before


def test_an_assumed_role_calls_with_stss_keys(gw: RunningGateway, client: OpenAI, fake: FakeBedrock,
                                              tag: str) -> None:
    reply = client.chat.completions.create(model="claude-role", messages=[{"role": "user", "content": tag}],
                                           extra_body=tagged(tag))
    assert reply.choices[0].message.content == f"You said: {tag}"
    credential = fake.requests[-1].headers["authorization"].split("Credential=")[1].split("/")[0]
    assert credential != KEY_ID and moto_sts_lookup(credential) is not None


def test_no_credential_reaches_the_client_the_span_or_the_logs(gw: RunningGateway, client: OpenAI,
                                                               fake: FakeBedrock, tag: str,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client.chat.completions.create(model="claude-role-fresh", messages=[{"role": "user", "content": "warm up"}])
    temp_key = fake.requests[-1].headers["authorization"].split("Credential=")[1].split("/")[0]
    temp_secret, temp_token = moto_sts_lookup(temp_key)
    seen: list[str] = []
    for model, secrets in (("claude", (SECRET, TOKEN)), ("claude-role-fresh", (temp_secret, temp_token))):
        echo = " and ".join(secrets)
        fake.script(Reply(status=403, error_type="UnrecognizedClientException", message=f"bad keys: {echo}"))
        with pytest.raises(openai.PermissionDeniedError) as caught:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": tag}],
                                           extra_body=tagged(f"{tag}-{model}"))
        seen.append(json.dumps(caught.value.body))
        assert "bad keys: ***" in seen[-1]
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": tag}],
                                       extra_body=tagged(f"{tag}-{model}-raw", log_raw_request=True))
        raw = span_of(gw, f"{tag}-{model}-raw")["attributes"][sc.metadata_key("raw_request")]
        assert "x-amz-date" in raw.lower() and "converse" in raw
        span_of(gw, f"{tag}-{model}")
    seen += [gw.span_log_path.read_text(), caplog.text]
    for secret in (SECRET, TOKEN, temp_secret, temp_token):
        assert not [line for where in seen for line in where.splitlines() if secret in line]


def test_with_no_endpoint_the_call_goes_to_the_regions_bedrock_host_and_only_there(tmp_path: Any) -> None:
    from tests.e2e.providers.test_hosts_e2e import RefusingProxy  # the hosts' refusing egress proxy

    model = {"model_name": "aws", "litellm_params": {"model": f"bedrock/{MODEL}", "aws_access_key_id": KEY_ID,
                                                     "aws_secret_access_key": SECRET, "aws_region_name": REGION}}
    with RefusingProxy().running() as proxy:
        config = {"model_list": [model], "spangate_settings": {"upstream_proxy": proxy.url}}
        with running_gateway(config, data_dir=tmp_path) as gw, \
                OpenAI(base_url=gw.openai_base_url, api_key="x", max_retries=0, timeout=10) as client, \
                pytest.raises(openai.APIStatusError) as refused:
            client.chat.completions.create(model="aws", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 502
    assert sorted(set(proxy.targets_since(0))) == [f"bedrock-runtime.{REGION}.amazonaws.com:443"]
    assert SECRET.encode() not in proxy.seen() and KEY_ID.encode() not in proxy.seen()
