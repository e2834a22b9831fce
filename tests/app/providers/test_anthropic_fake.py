"""The fake Messages API (``tests/support/fake_anthropic.py``) proven with Anthropic's own SDK.

What the SDK sends the fake accepts, and what the fake answers the SDK reads into its own types,
plain and streamed, tools and errors included: so the fake is the API the gateway's tests meet.
"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest

from tests.support import fake_anthropic
from tests.support.fake_anthropic import KEY, FakeAnthropic, Reply

MODEL = "claude-haiku-4-5"
WEATHER = {"name": "get_weather", "description": "The forecast",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as running:
        yield running


@pytest.fixture
def client(fake: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=KEY, base_url=fake.url, max_retries=0, timeout=10) as sdk:
        yield sdk


def test_a_plain_answer_is_read_into_the_sdks_message(client: anthropic.Anthropic, fake: FakeAnthropic) -> None:
    message = client.messages.create(model=MODEL, max_tokens=100, system="be brief",
                                     messages=[{"role": "user", "content": "hello there"}])
    assert message.content[0].type == "text" and message.content[0].text == "fake claude says: hello there"
    assert (message.stop_reason, message.model, message.role) == ("end_turn", MODEL, "assistant")
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens,
            message.usage.cache_creation_input_tokens) == (11, 5, 3)
    sent = fake.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {KEY}" and sent.headers["anthropic-version"] == "2026-10-21"
    assert sent.body["system"] == "be brief" and sent.body["max_tokens"] == 100


def test_a_streamed_answer_is_assembled_by_the_sdk(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=MODEL, max_tokens=100,
                                messages=[{"role": "user", "content": "stream me"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "fake claude says: stream me" == final.content[0].text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 5
    assert final.usage.cache_read_input_tokens == 5


def test_a_tool_use_and_its_result_round_trip(client: anthropic.Anthropic) -> None:
    asked = [{"role": "user", "content": "weather in Paris?"}]
    first = client.messages.create(model=MODEL, max_tokens=100, tools=[WEATHER], messages=asked)
    [use] = first.content
    assert first.stop_reason == "tool_use" and use.type == "tool_use" and use.input == {"city": "Paris", "days": 2}
    answered = [*asked, {"role": "assistant", "content": [use.model_dump(exclude_none=True)]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]}]
    second = client.messages.create(model=MODEL, max_tokens=100, tools=[WEATHER], messages=answered)
    assert second.content[0].text == "fake claude says: sunny"


def test_a_streamed_tool_use_arrives_as_json_deltas_the_sdk_joins(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=MODEL, max_tokens=100, tools=[WEATHER],
                                messages=[{"role": "user", "content": "weather?"}]) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "tool_use" and final.content[0].input == {"city": "Paris", "days": 2}


def test_sampling_params_follow_the_api_version(fake: FakeAnthropic) -> None:
    with anthropic.Anthropic(api_key=KEY, base_url=fake.url, max_retries=0,
                             default_headers={"anthropic-version": "2023-06-01"}) as old:
        message = old.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "hi"}],
                                      extra_body={"temperature": 0.2})
    assert message.stop_reason == "end_turn"
    with anthropic.Anthropic(api_key=KEY, base_url=fake.url, max_retries=0) as new, \
            pytest.raises(anthropic.BadRequestError, match="temperature: Extra inputs are not permitted"):
        new.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "hi"}],
                            extra_body={"temperature": 1.0})


def test_what_the_api_refuses_the_fake_refuses_in_the_apis_error_shape(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "system", "content": "x"}])
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError, match="text content blocks must be non-empty"):
        client.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": ""}])
    with pytest.raises(anthropic.BadRequestError, match="without tool_result"):
        client.messages.create(model=MODEL, max_tokens=5, messages=[
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {"role": "user", "content": "no result"}])
    with anthropic.Anthropic(api_key="sk-ant-wrong", base_url=client.base_url, max_retries=0) as wrong, \
            pytest.raises(anthropic.AuthenticationError):
        wrong.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}])


def test_scripted_faults_reach_the_sdk_as_anthropic_sends_them(client: anthropic.Anthropic,
                                                                fake: FakeAnthropic) -> None:
    fake.script(Reply(status=429, message="slow down", headers={"retry-after": "7"}))
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["error"] == {"type": "rate_limit_error", "message": "slow down"}
    fake.script(Reply(stream_error="overloaded_error"))
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"), \
            client.messages.stream(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "x"}]) as stream:
        list(stream.text_stream)


THINKING = {"type": "enabled", "budget_tokens": 1024}


def test_thinking_blocks_carry_their_signature_and_must_bring_it_back(client: anthropic.Anthropic) -> None:
    first = client.messages.create(model=MODEL, max_tokens=2000, thinking=THINKING,  # type: ignore[arg-type]
                                   messages=[{"role": "user", "content": "think"}])
    thought, text = first.content
    assert (thought.type, thought.signature, text.type) == ("thinking", fake_anthropic.SIGNATURE, "text")  # type: ignore[union-attr]
    unsigned = {"type": "thinking", "thinking": "fake thought"}
    turns = [{"role": "user", "content": "think"}, {"role": "assistant", "content": [unsigned]},
             {"role": "user", "content": "again"}]
    with pytest.raises(anthropic.BadRequestError, match="signature"):
        client.messages.create(model=MODEL, max_tokens=2000, messages=turns)  # type: ignore[arg-type]
    with client.messages.stream(model=MODEL, max_tokens=2000, thinking=THINKING,  # type: ignore[arg-type]
                                messages=[{"role": "user", "content": "think"}]) as stream:
        final = stream.get_final_message()
    assert final.content[0].signature == fake_anthropic.SIGNATURE  # type: ignore[union-attr]


def test_a_stop_sequence_hit_is_named(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=MODEL, max_tokens=100, stop_sequences=["##"],
                                     messages=[{"role": "user", "content": "one ## two"}])
    assert (message.stop_reason, message.stop_sequence, message.content[0].text) == (  # type: ignore[union-attr]
        "stop_sequence", "##", "fake claude says: one ")
    with client.messages.stream(model=MODEL, max_tokens=100, stop_sequences=["##"],
                                messages=[{"role": "user", "content": "one ## two"}]) as stream:
        final = stream.get_final_message()
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "##")
