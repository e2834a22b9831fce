"""Claude on Vertex AI in the Gemini fake (``tests.support.fake_gemini``), proven with Anthropic's own
SDK: ``anthropic.AnthropicVertex`` with a service account whose token google-auth gets from the fake's
token endpoint. What the SDK sends (``:rawPredict`` / ``:streamRawPredict``, the model and its ``@``
version in the URL, ``anthropic_version`` in the body, the Bearer token) the fake takes; what it
answers the SDK reads, plain and streamed; and it refuses what Vertex refuses."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import google.auth.transport.requests
import httpx
import pytest
from google.oauth2 import service_account

from app.providers.vertex import SCOPES
from tests.support.fake_gemini import FakeGemini

MODEL = "claude-haiku-4-5@20251001"
PATH = f"/v1/projects/proj-c/locations/us-east5/publishers/anthropic/models/{MODEL}"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as running:
        yield running


@pytest.fixture
def client(fake: FakeGemini) -> Iterator[anthropic.AnthropicVertex]:
    credentials = service_account.Credentials.from_service_account_info(fake.service_account("proj-c"),
                                                                        scopes=list(SCOPES))
    with anthropic.AnthropicVertex(region="us-east5", project_id="proj-c", credentials=credentials,
                                   base_url=f"{fake.url}/v1", max_retries=0) as sdk:
        yield sdk


def test_the_sdk_reads_a_plain_answer_with_its_usage(fake: FakeGemini, client: anthropic.AnthropicVertex) -> None:
    message = client.messages.create(model=MODEL, max_tokens=100, system="be brief",
                                     messages=[{"role": "user", "content": "hello there"}])
    assert [b.text for b in message.content if b.type == "text"] == ["fake claude says: hello there"]
    assert message.stop_reason == "end_turn"
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (11, 5, 3)
    sent = fake.requests[-1]
    assert sent.path == f"{PATH}:rawPredict" and sent.headers["authorization"].removeprefix("Bearer ") in fake.tokens
    assert "model" not in sent.body and sent.body["anthropic_version"]


def test_the_sdk_reads_a_stream_event_by_event(fake: FakeGemini, client: anthropic.AnthropicVertex) -> None:
    with client.messages.stream(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "one two"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "fake claude says: one two" and final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 5
    assert fake.requests[-1].path == f"{PATH}:streamRawPredict" and fake.requests[-1].body["stream"] is True


def test_the_sdk_reads_a_tool_use(client: anthropic.AnthropicVertex) -> None:
    tool = {"name": "weather", "description": "the weather", "input_schema": {"type": "object", "properties": {
        "city": {"type": "string"}}}}
    message = client.messages.create(model=MODEL, max_tokens=100, tools=[tool],
                                     messages=[{"role": "user", "content": "weather?"}])
    [use] = [b for b in message.content if b.type == "tool_use"]
    assert (use.name, use.input, message.stop_reason) == ("weather", {"city": "Paris", "days": 2}, "tool_use")


def test_a_token_the_fake_did_not_issue_is_refused_in_googles_shape(fake: FakeGemini) -> None:
    with anthropic.AnthropicVertex(region="us-east5", project_id="proj-c", access_token="ya29.forged",
                                   base_url=f"{fake.url}/v1", max_retries=0) as forged, \
            pytest.raises(anthropic.AuthenticationError) as refused:
        forged.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert refused.value.body["error"]["status"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(("change", "problem"), [
    ({"anthropic_version": None}, "anthropic_version"), ({"anthropic_version": "2023-06-01"}, "anthropic_version"),
    ({"model": MODEL}, "model: Extra inputs"), ({"max_tokens": None}, "max_tokens: Field required"),
    ({"messages": [{"role": "system", "content": "x"}]}, "Unexpected role")])
def test_a_body_vertex_would_refuse_is_a_400_in_anthropics_shape(
        fake: FakeGemini, change: dict[str, object], problem: str) -> None:
    # Sent by hand: the SDK would fill in anthropic_version and take the model out.
    credentials = service_account.Credentials.from_service_account_info(fake.service_account(), scopes=list(SCOPES))
    credentials.refresh(google.auth.transport.requests.Request())
    body = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 5,
            "messages": [{"role": "user", "content": "x"}], **change}
    refused = httpx.post(f"{fake.url}{PATH}:rawPredict", json={k: v for k, v in body.items() if v is not None},
                         headers={"authorization": f"Bearer {credentials.token}"})
    assert refused.status_code == 400
    assert refused.json()["type"] == "error" and problem in refused.json()["error"]["message"]
