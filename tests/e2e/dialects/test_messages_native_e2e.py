"""``POST /v1/messages`` to an ``anthropic/`` deployment goes through as the client wrote it: the real
gateway, the ``anthropic`` SDK, ``tests/support/fake_anthropic.py`` (which records what it received).

Thinking blocks with their signatures in earlier turns, ``stop_sequence``, the answer's bytes and its
events survive (the chat round trip loses them); the span still has the models, usage and finish
reason, read from a translation of the same bytes. A hook that changes the request, or a stream
filter, sends the call through the translation instead.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from contracts import semconv as sc
from tests.e2e.dialects.test_messages_e2e import CLAUDE, client, fake, gw, key, models, span_of, tag, upstream
from tests.support.fake_anthropic import KEY as ANTHROPIC_KEY
from tests.support.fake_anthropic import SIGNATURE, FakeAnthropic, Reply, message_for, stream_events
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.teams import loopback_client
from tests.support.upstream import FakeOpenAI

__all__ = ["client", "fake", "gw", "key", "tag", "upstream"]  # the fixtures, imported for pytest

THINKING = {"type": "enabled", "budget_tokens": 1024}
BETA = "interleaved-thinking-2025-05-14"


def turns(tag: str) -> list[dict[str, Any]]:
    """A past assistant turn that thought (its signature must come back as it was), then a question
    whose answer holds the stop sequence ``##``."""
    return [{"role": "user", "content": "first question"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "earlier thought", "signature": SIGNATURE},
                {"type": "text", "text": "first answer"}]},
            {"role": "user", "content": [{"type": "text", "text": f"{tag} ## rest"}]}]


def asked(tag: str, **more: Any) -> dict[str, Any]:
    return {"model": "claude", "max_tokens": 2000, "thinking": THINKING, "stop_sequences": ["##"],
            "messages": turns(tag), "metadata": {"user_id": "end-user-9", "test": tag}, **more}


def received(fake: FakeAnthropic, tag: str) -> Any:
    [match] = [r for r in fake.requests if tag in json.dumps(r.body)]
    return match


def post(gw: RunningGateway, key: str, body: dict[str, Any]) -> httpx.Response:
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01", "anthropic-beta": BETA}
    with loopback_client() as http:
        return http.post(gw.base_url + "/v1/messages", json=body, headers=headers)


def assert_passed_through(fake: FakeAnthropic, tag: str, stream: bool) -> dict[str, Any]:
    got = received(fake, tag)
    sent = asked(tag)
    assert json.dumps(got.body["messages"]) == json.dumps(sent["messages"])  # signature and all, in order
    assert json.loads(got.raw) == got.body and got.body["model"] == CLAUDE
    expected = {"max_tokens": 2000, "thinking": THINKING, "stop_sequences": ["##"],
                "metadata": {"user_id": "end-user-9"}}  # metadata.test is the gateway's (LiteLLM's)
    assert {k: got.body.get(k) for k in expected} == expected
    assert got.body.get("stream", False) is stream
    assert got.headers["anthropic-beta"] == BETA and got.headers["x-api-key"] == ANTHROPIC_KEY
    assert got.headers["anthropic-version"] == "2023-06-01"  # the deployment's, not the client's
    return got.body


def assert_span(gw: RunningGateway, tag: str) -> dict[str, Any]:
    attrs = span_of(gw, tag)["attributes"]
    expected = {sc.OPERATION_NAME: "chat", sc.PROVIDER_NAME: "anthropic", sc.REQUEST_MODEL: "claude",
                sc.RESPONSE_MODEL: CLAUDE, sc.RESPONSE_FINISH_REASONS: ["stop"], sc.USAGE_INPUT_TOKENS: 19,
                sc.USAGE_CACHE_READ_INPUT_TOKENS: 5, sc.END_USER: "end-user-9"}
    assert {k: attrs.get(k) for k in expected} == expected
    assert attrs[sc.USAGE_OUTPUT_TOKENS] > 0 and attrs[sc.USAGE_COST] > 0
    return attrs


def test_a_create_goes_through_as_written_and_comes_back_as_anthropic_said_it(
        gw: RunningGateway, client: anthropic.Anthropic, fake: FakeAnthropic, tag: str) -> None:
    body = asked(tag)
    message = client.messages.create(model="claude", max_tokens=2000, thinking=THINKING,  # type: ignore[arg-type]
                                     stop_sequences=["##"], messages=body["messages"],
                                     extra_body={"metadata": body["metadata"]},
                                     extra_headers={"anthropic-beta": BETA})
    thought, text = message.content
    assert (thought.type, thought.signature) == ("thinking", SIGNATURE)  # type: ignore[union-attr]
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "##")
    assert text.text == f"fake claude says: {tag} "  # type: ignore[union-attr]
    assert_passed_through(fake, tag, stream=False)
    assert_span(gw, tag)


def test_the_answer_bytes_are_anthropics_own(gw: RunningGateway, key: str, fake: FakeAnthropic, tag: str) -> None:
    reply = post(gw, key, asked(tag))
    assert reply.status_code == 200
    sent = assert_passed_through(fake, tag, stream=False)
    assert reply.content == json.dumps(message_for(sent)).encode()  # the fake's body, byte for byte


def test_a_stream_relays_anthropics_events_as_they_are(gw: RunningGateway, key: str, client: anthropic.Anthropic,
                                                       fake: FakeAnthropic, tag: str) -> None:
    with loopback_client() as http, http.stream(
            "POST", gw.base_url + "/v1/messages", json=asked(tag, stream=True),
            headers={"x-api-key": key, "anthropic-version": "2023-06-01", "anthropic-beta": BETA}) as reply:
        raw = b"".join(reply.iter_bytes())
    sent = assert_passed_through(fake, tag, stream=True)
    assert raw == b"".join(stream_events(sent, Reply()))  # ping, signature_delta and all
    attrs = assert_span(gw, tag)
    assert attrs[sc.STREAM_OUTCOME] == "completed"

    again = f"{tag}-sdk"
    with client.messages.stream(model="claude", max_tokens=2000, thinking=THINKING,  # type: ignore[arg-type]
                                stop_sequences=["##"], messages=turns(again),  # type: ignore[arg-type]
                                extra_body={"metadata": {"test": again}}) as stream:
        kinds = [(event.type, getattr(getattr(event, "delta", None), "type", None)) for event in stream]
        final = stream.get_final_message()
    assert ("content_block_delta", "signature_delta") in kinds  # the SDK does not surface pings
    assert final.content[0].signature == SIGNATURE  # type: ignore[union-attr]
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "##")


def test_an_anthropic_error_keeps_its_own_status_and_body_without_the_key(
        gw: RunningGateway, key: str, fake: FakeAnthropic, tag: str) -> None:
    fake.script(Reply(status=429, message="slow down, {key}", headers={"retry-after": "7"}))
    reply = post(gw, key, asked(tag))
    assert reply.status_code == 429 and ANTHROPIC_KEY not in reply.text
    body = reply.json()
    assert body["type"] == "error" and body["request_id"] == "req_fake01"
    assert body["error"]["type"] == "rate_limit_error" and body["error"]["message"].startswith("slow down, ")
    attrs = span_of(gw, tag)["attributes"]
    assert attrs[sc.ERROR_TYPE] == "rate_limit_error" and ANTHROPIC_KEY not in json.dumps(attrs)


def test_an_error_in_the_middle_of_a_stream_is_one_error_event(key: str, gw: RunningGateway,
                                                              fake: FakeAnthropic, tag: str) -> None:
    fake.script(Reply(stream_error="overloaded_error", stream_error_after=4))
    with loopback_client() as http, http.stream("POST", gw.base_url + "/v1/messages", json=asked(tag, stream=True),
                                                headers={"x-api-key": key}) as reply:
        raw = b"".join(reply.iter_bytes())
    sent = received(fake, tag).body
    before = b"".join(stream_events(sent, Reply())[:4])
    assert raw.startswith(before) and raw.count(b"event: error") == 1 and raw.endswith(b"\n\n")
    error = json.loads(raw[len(before):].split(b"data: ", 1)[1])
    assert error["error"]["type"] == "overloaded_error"
    assert span_of(gw, tag)["attributes"][sc.STREAM_OUTCOME] == "upstream_error"


# --- when it is translated instead -------------------------------------------------------------

HOOKS = """
from app.custom_logger import CustomLogger


class Rewriter(CustomLogger):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        if "rewrite" in str(data["messages"][-1]["content"]):
            data["max_tokens"] = 1500
        return data


rewriter = Rewriter()
"""


@pytest.fixture(scope="module")
def hooked(upstream: FakeOpenAI, fake: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[RunningGateway]:
    folder = tmp_path_factory.mktemp("hooked")
    (folder / "hooks.py").write_text(textwrap.dedent(HOOKS))
    config = {"model_list": models(upstream.api_base, fake.url),
              "litellm_settings": {"callbacks": ["hooks.rewriter"], "success_callback": ["file"]}}
    with running_gateway(config, data_dir=folder) as running:
        yield running


def test_a_hook_that_changes_the_request_sends_it_through_the_translation(
        hooked: RunningGateway, fake: FakeAnthropic, tag: str) -> None:
    with anthropic.Anthropic(base_url=hooked.base_url, api_key="anything", max_retries=0, timeout=10) as sdk:
        kept = f"{tag}-kept"
        sdk.messages.create(model="claude", max_tokens=2000, thinking=THINKING,  # type: ignore[arg-type]
                            messages=turns(kept), extra_body={"metadata": {"test": kept}})  # type: ignore[arg-type]
        changed = f"{tag}-rewrite"
        message = sdk.messages.create(model="claude", max_tokens=2000, messages=turns(changed),  # type: ignore[arg-type]
                                      extra_body={"metadata": {"test": changed}})
    assert json.dumps(received(fake, kept).body["messages"]) == json.dumps(turns(kept))  # unchanged: passed
    body = received(fake, changed).body
    assert body["max_tokens"] == 1500  # the hook's request, translated: chat has no thinking blocks
    assert [b["type"] for b in body["messages"][1]["content"]] == ["text"]
    assert message.stop_reason == "end_turn"


def test_with_a_stream_filter_streams_are_translated_and_plain_answers_still_moderated(
        upstream: FakeOpenAI, fake: FakeAnthropic, tmp_path: Path, tag: str) -> None:
    from tests.support.content_safety import ContentSafetyStandIn

    with ContentSafetyStandIn(key="cs-key") as cs:
        cs.score("says: OUT-MARK-77", Violence=4)
        config = {"model_list": models(upstream.api_base, fake.url),
                  "litellm_settings": {"callbacks": ["azure_content_safety"], "azure_content_safety_params": {
                      "endpoint": cs.endpoint, "key": "cs-key", "stream_mode": "end"}}}
        with running_gateway(config, data_dir=tmp_path) as moderated, \
                anthropic.Anthropic(base_url=moderated.base_url, api_key="x", max_retries=0, timeout=10) as sdk:
            plain = f"{tag}-plain"
            answer = sdk.messages.create(model="claude", max_tokens=2000, messages=turns(plain))  # type: ignore[arg-type]
            with pytest.raises(anthropic.BadRequestError, match="moderation"):
                sdk.messages.create(model="claude", max_tokens=50,
                                    messages=[{"role": "user", "content": f"OUT-MARK-77 {tag}"}])
            streamed = f"{tag}-stream"
            with sdk.messages.stream(model="claude", max_tokens=2000, messages=turns(streamed)) as stream:  # type: ignore[arg-type]
                final = stream.get_final_message()
    assert json.dumps(received(fake, plain).body["messages"]) == json.dumps(turns(plain))  # passed through
    assert answer.content[0].text == f"fake claude says: {plain} ## rest"  # type: ignore[union-attr]
    # The stream went through the chat translation, which has no word for thinking blocks.
    assert [b["type"] for b in received(fake, streamed).body["messages"][1]["content"]] == ["text"]
    assert final.content[0].text == f"fake claude says: {streamed} ## rest"  # type: ignore[union-attr]


def test_a_fail_over_to_an_openai_deployment_is_translated(upstream: FakeOpenAI, tmp_path: Path, tag: str) -> None:
    with FakeAnthropic(ANTHROPIC_KEY) as refusing:
        refusing.script(Reply(status=429, message="rate limited"))
        both = [{**entry, "model_name": "both"} for entry in models(upstream.api_base, refusing.url)[:2]]
        with running_gateway({"model_list": both}, data_dir=tmp_path) as gw, \
                anthropic.Anthropic(base_url=gw.base_url, api_key="x", max_retries=0, timeout=10) as sdk:
            # Round robin: of two calls, one starts at Anthropic (a 429: the next one answers), one at OpenAI.
            answers = [sdk.messages.create(model="both", max_tokens=50,
                                           messages=[{"role": "user", "content": f"{tag} {i}"}]) for i in range(2)]
        assert len(refusing.requests) == 1
    assert [a.content[0].text for a in answers] == [f"fake says: {tag} {i}" for i in range(2)]  # type: ignore[union-attr]
    assert all(a.stop_reason == "end_turn" for a in answers)


def searched(tag: str) -> list[dict[str, Any]]:
    """A web search turn: Anthropic's server tool blocks and a cited text, then the next question."""
    citation = {"type": "web_search_result_location", "url": "https://example.com/", "title": "Example",
                "cited_text": "an example", "encrypted_index": "Eo8BCioIAhgBIiQ"}
    return [{"role": "user", "content": "search it"},
            {"role": "assistant", "content": [
                {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {"query": "x"}},
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01", "content": [
                    {"type": "web_search_result", "url": "https://example.com/", "title": "Example",
                     "encrypted_content": "EqgfCioIARgBIiQ", "page_age": None}]},
                {"type": "text", "text": "It is an example.", "citations": [citation]}]},
            {"role": "user", "content": f"{tag} and then?"}]


def test_server_tool_blocks_go_only_as_they_are(gw: RunningGateway, key: str, fake: FakeAnthropic, tag: str) -> None:
    body = {"model": "claude", "max_tokens": 50, "messages": searched(tag),
            "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]}
    reply = post(gw, key, body)
    assert reply.status_code == 200, reply.text
    assert json.dumps(received(fake, tag).body["messages"]) == json.dumps(searched(tag))
    refused = post(gw, key, {**body, "model": "gpt", "messages": searched(f"{tag}-gpt")})
    assert refused.status_code == 400 and refused.json()["error"]["type"] == "invalid_request_error"
    assert "messages[1].content[0] is a server_tool_use block" in refused.json()["error"]["message"]
