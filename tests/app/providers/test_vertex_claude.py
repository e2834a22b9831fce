"""Claude on Vertex AI (``app.providers.vertex``, ``AnthropicVertexDialect``): Anthropic's Messages
body under Vertex's URL scheme, both error shapes Vertex answers in, the stream; then the deployment
against the loopback fake (its token from the fake's token endpoint), and generated requests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from google.oauth2.credentials import Credentials
from hypothesis import HealthCheck, given, settings

from app.calls.operations import Operation
from app.config.providers.anthropic import AnthropicParams
from app.config.providers.google import VertexParams
from app.config.settings import DeploymentConfig, parse_config
from app.errors import InvalidRequest
from app.providers.native import Resources
from app.providers.registry import build_deployment
from app.providers.vertex import ANTHROPIC_VERSION, AnthropicVertexDialect, TokenSource, VertexRoute
from contracts import semconv as sc
from tests.app.providers.test_anthropic import _expected_blocks, well_formed
from tests.support import fake_anthropic
from tests.support.fake_gemini import FakeGemini, claude_body, google_error
from tests.support.openai_bodies import chat_body

MODEL = "claude-haiku-4-5@20251001"
USER = {"role": "user", "content": "hi"}


def dialect(headers: dict[str, str] | None = None, **params: Any) -> AnthropicVertexDialect:
    vertex = VertexParams("proj-c", "us-east5", "anthropic", None, AnthropicParams(**{"max_tokens": 64000, **params}))
    route = VertexRoute("https://us-east5-aiplatform.googleapis.com", vertex, MODEL,
                        TokenSource(Credentials(token="ya29.t")))
    return AnthropicVertexDialect(MODEL, vertex.anthropic or AnthropicParams(1), route, headers)


def test_the_request_is_the_messages_body_without_model_with_anthropic_version() -> None:
    built = dialect({"anthropic-beta": "x"}).request(Operation.CHAT, {"model": "c", "messages": [USER]}, False)
    assert built.url == ("https://us-east5-aiplatform.googleapis.com/v1/projects/proj-c/locations/us-east5/"
                         f"publishers/anthropic/models/{MODEL}:rawPredict")
    assert dict(built.headers) == {"authorization": "Bearer ya29.t", "content-type": "application/json",
                                   "anthropic-beta": "x"}
    assert json.loads(built.body) == {"anthropic_version": ANTHROPIC_VERSION, "max_tokens": 64000,
                                      "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    assert ANTHROPIC_VERSION == "vertex-2023-10-16"


def test_a_stream_goes_to_stream_raw_predict_with_stream_true() -> None:
    built = dialect().request(Operation.CHAT, {"messages": [USER], "max_tokens": 9, "temperature": 0.5}, True)
    assert built.url.endswith(f"/models/{MODEL}:streamRawPredict")
    body = json.loads(built.body)
    assert (body["stream"], body["max_tokens"], body["temperature"]) == (True, 9, 0.5)


def test_params_anthropic_lacks_are_refused_unless_drop_params() -> None:
    payload = {"messages": [USER], "seed": 7}
    with pytest.raises(InvalidRequest) as refused:
        dialect().request(Operation.CHAT, payload, False)
    assert refused.value.param == "seed"
    assert "seed" not in json.loads(dialect(drop_params=True).request(Operation.CHAT, payload, False).body)


def test_errors_in_googles_shape_and_in_anthropics_both_become_openai_error_json() -> None:
    google = dialect().error(429, json.dumps(google_error(429, "Quota exceeded", "RESOURCE_EXHAUSTED")).encode())
    assert json.loads(google) == {"error": {"message": "Quota exceeded", "type": "rate_limit_error",
                                            "code": "RESOURCE_EXHAUSTED"}}
    claude = {"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: too big"}}
    assert json.loads(dialect().error(400, json.dumps(claude).encode())) == {"error": {
        "message": "max_tokens: too big", "type": "invalid_request_error", "code": "invalid_request_error"}}
    assert json.loads(dialect().error(502, b"<html>bad gateway</html>"))["error"]["message"] == (
        "<html>bad gateway</html>")


def test_an_answer_and_a_stream_read_as_anthropics() -> None:
    body = {"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": "a b"}]}
    answer = json.loads(dialect().answer(Operation.CHAT, json.dumps(fake_anthropic.message_for(body)).encode(), {}))
    assert answer["choices"][0]["message"]["content"] == "fake claude says: a b"
    assert answer["usage"]["prompt_tokens_details"] == {"cached_tokens": 5, "cache_creation_tokens": 3}
    stream = dialect().stream(Operation.CHAT, {"stream_options": {"include_usage": True}})
    out = b"".join(stream.feed(e) for e in fake_anthropic.stream_events(body, fake_anthropic.Reply())) + stream.close()
    chunks = [json.loads(line[6:]) for line in out.split(b"\n\n") if line.startswith(b"data: {")]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == (
        "fake claude says: a b")
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 19 + 5
    assert out.endswith(b"data: [DONE]\n\n")


# --- the deployment against the fake -----------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as running:
        yield running


@pytest.fixture
async def resources() -> AsyncIterator[Resources]:
    transport = httpx.AsyncHTTPTransport()
    yield Resources(transport)
    await transport.aclose()


def _config(fake: FakeGemini, **params: object) -> DeploymentConfig:
    litellm = {"model": f"vertex_ai/{MODEL}", "vertex_project": "proj-c", "vertex_location": "us-east5",
               "vertex_credentials": json.dumps(fake.service_account("proj-c")), "api_base": fake.url, **params}
    return parse_config({"model_list": [{"model_name": "vc", "litellm_params": litellm}]}, environ={}).deployments[0]


async def test_the_deployment_answers_plain_and_streamed_with_a_token_from_the_fake(
        fake: FakeGemini, resources: Resources) -> None:
    deployment = build_deployment(_config(fake), resources)
    assert deployment.provider_name == sc.PROVIDER_GCP_VERTEX_AI
    reply = await deployment.complete("chat", {"messages": [{"role": "system", "content": "brief"}, USER]})
    assert reply.status == 200 and json.loads(reply.body)["choices"][0]["message"]["content"] == "fake claude says: hi"
    stream = await deployment.stream("chat", {"messages": [USER], "stream_options": {"include_usage": True}})
    try:
        out = b"".join([chunk async for chunk in stream.chunks()])
    finally:
        await stream.aclose()
    assert b'"usage"' in out and out.endswith(b"data: [DONE]\n\n")
    plain, streamed = fake.requests
    assert plain.path.endswith(f"/models/{MODEL}:rawPredict") and streamed.path.endswith(":streamRawPredict")
    assert plain.body["max_tokens"] == 64000 and plain.body["system"] == [{"type": "text", "text": "brief"}]
    assert {plain.headers["authorization"], streamed.headers["authorization"]} == {"Bearer ya29.fake-token-1"}


async def test_an_anthropic_error_through_vertex_keeps_its_status_and_type(fake: FakeGemini,
                                                                          resources: Resources) -> None:
    deployment = build_deployment(_config(fake, max_tokens=5), resources)
    reply = await deployment.complete("chat", {"messages": [{"role": "assistant", "content": "x"},
                                                            {"role": "tool", "tool_call_id": "c1", "content": "r"}]})
    assert reply.status == 400 and json.loads(reply.body)["error"]["type"] == "invalid_request_error"


# --- generated requests ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(chat_body)
def test_generated_requests_raise_only_invalid_request_and_lose_nothing(payload: dict[str, Any]) -> None:
    payload.pop("metadata", None)  # the proxy takes LiteLLM's metadata out before any deployment sees it
    try:
        built = dialect(drop_params=True).request(Operation.CHAT, payload, bool(payload.get("stream")))
    except InvalidRequest:
        return
    body = json.loads(built.body)
    assert body["anthropic_version"] == ANTHROPIC_VERSION and "model" not in body
    messages = payload["messages"]
    others = [m for m in messages if m["role"] not in ("system", "developer")]
    assert sum(len(m["content"]) for m in body["messages"]) == sum(_expected_blocks(m) for m in others)
    assert len(body.get("system", [])) == sum(_expected_blocks(m) for m in messages if m not in others)
    assert len(body.get("tools", [])) == len(payload.get("tools") or [])


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(well_formed)
def test_well_formed_requests_pass_the_fakes_checks_of_what_vertex_takes(payload: dict[str, Any]) -> None:
    try:
        built = dialect().request(Operation.CHAT, payload, False)
    except InvalidRequest as refused:  # an assistant turn with nothing in it, or no turn at all
        assert refused.param == "messages" or str(refused.param).endswith(".content"), refused
        return
    try:
        claude_body(MODEL, "rawPredict", json.loads(built.body))
    except fake_anthropic.Refused as refused:
        # Only what the generated conversation itself gets wrong, which Vertex answers with a 400 the client
        # gets: an empty text, tool results that answer no call.
        assert any(w in refused.message for w in ("non-empty", "tool_use", "tool_result")), refused.message
