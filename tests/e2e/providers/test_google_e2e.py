"""``gemini/`` and ``vertex_ai/`` end to end: the real gateway on loopback, a config naming both
pointed at the Gemini fake (``tests.support.fake_gemini``, proven with google-genai), driven with
the ``openai`` client; the spans read from the ``file`` destination.

The client gets OpenAI's shapes (answers, chunks, usage, tool calls, embeddings, errors with their
status), the spans say which provider and model answered, why it stopped and what it cost, and no
credential (the Gemini key, the service account's private key, the OAuth token) reaches the
client, a span or a log line.
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
from tests.support.fake_gemini import FakeGemini, Fault, google_error
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.spanlog import only

KEY = "AIzaSyFAKE-gemini-key-0123456789abcdef"
TAG = sc.metadata_key("test")
TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "look it up",
                                           "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(KEY) as running:
        yield running


@pytest.fixture(scope="module")
def gw(fake: FakeGemini, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    account = json.dumps(fake.service_account("proj-e2e"))
    config = {
        "model_list": [
            {"model_name": "gem", "litellm_params": {"model": "gemini/gemini-2.5-flash", "api_base": fake.url,
                                                     "api_key": "os.environ/GEMINI_API_KEY"}},
            {"model_name": "gem-embed", "litellm_params": {"model": "gemini/gemini-embedding-001",
                                                           "api_base": fake.url}},
            {"model_name": "vtx", "litellm_params": {
                "model": "vertex_ai/gemini-2.5-flash", "vertex_project": "proj-e2e", "vertex_location": "us-east5",
                "vertex_credentials": account, "api_base": fake.url}},
        ],
        "litellm_settings": {"success_callback": ["file"], "failure_callback": ["file"]},
    }
    with running_gateway(config, env={"GEMINI_API_KEY": KEY}, data_dir=tmp_path_factory.mktemp("google")) as running:
        yield running


@pytest.fixture
def client(gw: RunningGateway) -> Iterator[OpenAI]:
    with OpenAI(base_url=gw.openai_base_url, api_key="anything", max_retries=0, timeout=10) as openai_client:
        yield openai_client


@pytest.fixture
def tag(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"metadata": {"test": request.node.name, "log_raw_request": True}}


def span_of(gw: RunningGateway, tag: dict[str, Any]) -> dict[str, Any]:
    name = tag["metadata"]["test"]
    return only(gw.wait_for_spans(1, where=lambda s: s["attributes"].get(TAG) == name))


def test_a_plain_answer_with_usage_and_its_span(gw: RunningGateway, client: OpenAI, tag: dict[str, Any]) -> None:
    answer = client.chat.completions.create(model="gem", messages=[
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}], temperature=0.2,
        extra_body=tag)
    assert answer.choices[0].message.content == "fake gemini says: hello"
    assert answer.choices[0].finish_reason == "stop" and answer.model == "gemini-2.5-flash-001"
    usage = answer.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (11, 10, 21)
    assert usage.prompt_tokens_details.cached_tokens == 2 and usage.completion_tokens_details.reasoning_tokens == 3
    attrs = span_of(gw, tag)["attributes"]
    assert attrs[sc.PROVIDER_NAME] == "gcp.gemini"
    assert (attrs[sc.REQUEST_MODEL], attrs[sc.RESPONSE_MODEL]) == ("gem", "gemini-2.5-flash-001")
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ["stop"]
    assert (attrs[sc.USAGE_INPUT_TOKENS], attrs[sc.USAGE_OUTPUT_TOKENS]) == (11, 10)
    assert attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS] == 2 and attrs[sc.USAGE_REASONING_OUTPUT_TOKENS] == 3
    # genai-prices' gemini-2.5-flash: $0.30 in, $2.50 out, $0.03 cached, per million tokens
    assert attrs[sc.USAGE_COST] == pytest.approx((9 * 0.30 + 2 * 0.03 + 10 * 2.50) / 1e6)


def test_a_stream_with_include_usage_ends_with_the_usage_chunk(gw: RunningGateway, client: OpenAI,
                                                               tag: dict[str, Any]) -> None:
    chunks = list(client.chat.completions.create(model="gem", messages=[{"role": "user", "content": "one two"}],
                                                 stream=True, stream_options={"include_usage": True}, extra_body=tag))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "fake gemini says: one two"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 21
    attrs = span_of(gw, tag)["attributes"]
    assert attrs[sc.REQUEST_STREAM] is True and attrs[sc.USAGE_OUTPUT_TOKENS] == 10
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ["stop"]


def test_a_stream_without_include_usage_shows_none_but_the_span_has_it(gw: RunningGateway, client: OpenAI,
                                                                      tag: dict[str, Any]) -> None:
    chunks = list(client.chat.completions.create(model="gem", messages=[{"role": "user", "content": "x"}],
                                                 stream=True, extra_body=tag))
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)
    assert span_of(gw, tag)["attributes"][sc.USAGE_INPUT_TOKENS] == 11


def test_a_tool_call_and_its_result_make_a_round_trip(gw: RunningGateway, client: OpenAI,
                                                      tag: dict[str, Any]) -> None:
    messages: list[Any] = [{"role": "user", "content": "find cats"}]
    first = client.chat.completions.create(model="gem", messages=messages, tools=TOOLS, extra_body=tag)
    [call] = first.choices[0].message.tool_calls
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == ("lookup", {"echo": "find cats"})
    assert span_of(gw, tag)["attributes"][sc.RESPONSE_FINISH_REASONS] == ["tool_calls"]
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "3 cats"}]
    second = client.chat.completions.create(model="gem", messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == 'fake gemini says: tool said {"content": "3 cats"}'


def test_a_streamed_tool_call(client: OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="gem", messages=[{"role": "user", "content": "q"}],
                                                 tools=TOOLS, tool_choice="required", stream=True))
    calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
    assert [(t.function.name, t.function.arguments) for t in calls] == [("lookup", '{"echo":"q"}')]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_embeddings_in_openais_shape_with_usage(gw: RunningGateway, client: OpenAI, tag: dict[str, Any]) -> None:
    answer = client.embeddings.create(model="gem-embed", input=["abc", "hello world"], dimensions=3, extra_body=tag)
    assert [d.embedding for d in answer.data] == [[3.0, 0.5, 0.5], [11.0, 0.5, 0.5]]  # base64 on the wire
    assert answer.usage.prompt_tokens == 3
    attrs = span_of(gw, tag)["attributes"]
    assert attrs[sc.PROVIDER_NAME] == "gcp.gemini" and attrs[sc.USAGE_INPUT_TOKENS] == 3


@pytest.mark.parametrize(("status", "google_status", "error"), [
    (429, "RESOURCE_EXHAUSTED", openai.RateLimitError), (400, "INVALID_ARGUMENT", openai.BadRequestError)])
def test_upstream_errors_keep_their_status_in_openai_error_json_without_the_key(
        gw: RunningGateway, fake: FakeGemini, client: OpenAI, tag: dict[str, Any], status: int, google_status: str,
        error: type[openai.APIStatusError]) -> None:
    fake.script(Fault(status, google_error(status, f"key {KEY} is over quota", google_status), {"retry-after": "7"}))
    with pytest.raises(error) as caught:
        client.chat.completions.create(model="gem", messages=[{"role": "user", "content": "x"}], extra_body=tag)
    body = caught.value.body
    assert caught.value.status_code == status and body["code"] == google_status and "over quota" in body["message"]
    assert KEY not in json.dumps(body) and KEY[10:20] not in json.dumps(body)
    attrs = span_of(gw, tag)["attributes"]
    assert attrs[sc.ERROR_TYPE] and KEY[10:20] not in json.dumps(attrs)


def test_vertex_ai_answers_plain_and_streamed_with_its_provider_name(gw: RunningGateway, fake: FakeGemini,
                                                                     client: OpenAI, tag: dict[str, Any]) -> None:
    answer = client.chat.completions.create(model="vtx", messages=[{"role": "user", "content": "hi"}], extra_body=tag)
    assert answer.choices[0].message.content == "fake gemini says: hi" and answer.usage.total_tokens == 21
    sent = fake.requests[-1]
    assert sent.path == ("/v1/projects/proj-e2e/locations/us-east5/publishers/google/models/"
                         "gemini-2.5-flash:generateContent") and sent.headers["authorization"].startswith("Bearer ")
    streamed = client.chat.completions.create(model="vtx", messages=[{"role": "user", "content": "a b"}], stream=True,
                                              stream_options={"include_usage": True})
    chunks = list(streamed)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "fake gemini says: a b"
    assert chunks[-1].usage.completion_tokens == 10
    attrs = span_of(gw, tag)["attributes"]
    assert attrs[sc.PROVIDER_NAME] == "gcp.vertex_ai" and attrs[sc.USAGE_COST] > 0


def test_no_credential_reaches_a_client_a_span_or_a_log(gw: RunningGateway, fake: FakeGemini, client: OpenAI,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen = [client.chat.completions.create(model=m, messages=[{"role": "user", "content": "x"}],
                                           extra_body={"metadata": {"log_raw_request": True}}).model_dump_json()
            for m in ("gem", "vtx")]
    fake.script(Fault(401, google_error(401, f"bad key {KEY}", "UNAUTHENTICATED")))
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="gem", messages=[{"role": "user", "content": "x"}])
    seen.append(json.dumps(caught.value.body))
    spans = gw.wait_for_spans(2, where=lambda s: sc.metadata_key("raw_request") in s["attributes"])
    raw = [s["attributes"][sc.metadata_key("raw_request")] for s in spans]
    assert any("x-goog-api-key" in r for r in raw) and any("authorization" in r.lower() for r in raw)
    private_key = fake.service_account()["private_key"]
    secrets = [KEY[4:20], private_key[40:72], *fake.tokens]
    everything = "\n".join([*seen, json.dumps(gw.spans()), caplog.text])
    assert [s for s in secrets if s in everything] == []
