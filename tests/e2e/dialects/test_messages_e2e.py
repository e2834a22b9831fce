"""``POST /v1/messages`` end to end: the real gateway on loopback, the official ``anthropic`` SDK, an
OpenAI-compatible upstream (``tests/support/upstream.py``) and an Anthropic one
(``tests/support/fake_anthropic.py``), and the spans the ``file`` destination wrote.

One gateway serves the module (a store, a master key and one virtual key); each test tags its call
(``metadata.test``, which the dialect hands on as LiteLLM's metadata) and finds its span by it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from contracts import semconv as sc
from tests.support.fake_anthropic import KEY as ANTHROPIC_KEY
from tests.support.fake_anthropic import FakeAnthropic, Reply
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.spanlog import only
from tests.support.teams import MASTER_KEY, SALT_KEY, admin_client, database, loopback_client
from tests.support.upstream import LEAKED_KEY, Behaviour, FakeOpenAI

TAG = sc.metadata_key("test")
CLAUDE = "claude-haiku-4-5"
UPSTREAM_KEY = "sk-upstream-0123456789abcdef"
WEATHER = {"name": "get_weather", "description": "The forecast",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


def models(openai_base: str, anthropic_url: str) -> list[dict[str, Any]]:
    return [{"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": openai_base,
                                                     "api_key": UPSTREAM_KEY}},
            {"model_name": "claude", "litellm_params": {"model": f"anthropic/{CLAUDE}", "api_base": anthropic_url,
                                                        "api_key": ANTHROPIC_KEY}},
            {"model_name": "mock", "litellm_params": {"model": "mock/mock"}}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as running:
        yield running


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(ANTHROPIC_KEY) as running:
        yield running


@pytest.fixture(scope="module")
def gw(upstream: FakeOpenAI, fake: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory,
       ) -> Iterator[RunningGateway]:
    tmp = tmp_path_factory.mktemp("messages")
    with database("sqlite", tmp) as db:
        config = {"model_list": models(upstream.api_base, fake.url),
                  "general_settings": {"master_key": MASTER_KEY, "database_url": db.url},
                  "litellm_settings": {"success_callback": ["file"], "failure_callback": ["file"]},
                  "spangate_settings": {"team_poll_seconds": 0.2}}
        with running_gateway(config, env={"SPANGATE_SALT_KEY": SALT_KEY, **db.env}, data_dir=tmp) as running:
            yield running


@pytest.fixture(scope="module")
def key(gw: RunningGateway) -> str:
    with admin_client(gw.base_url) as admin:
        reply = admin.post("/key/generate", json={})
        assert reply.status_code == 200, reply.text
        return str(reply.json()["key"])


@pytest.fixture
def client(gw: RunningGateway, key: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gw.base_url, api_key=key, max_retries=0, timeout=10) as sdk:
        yield sdk


@pytest.fixture
def tag(request: pytest.FixtureRequest) -> str:
    return request.node.name.replace("[", "-").rstrip("]")


def span_of(gw: RunningGateway, tag: str) -> dict[str, Any]:
    return only(gw.wait_for_spans(1, where=lambda s: s["attributes"].get(TAG) == tag))


def meta(tag: str) -> dict[str, Any]:
    return {"metadata": {"test": tag}}


def sent_to(upstream: FakeOpenAI | FakeAnthropic, tag: str) -> Any:
    [match] = [r for r in upstream.requests if tag in json.dumps(r.body)]
    return match


# --- answers -----------------------------------------------------------------------------------


def test_create_to_an_openai_upstream_is_translated_both_ways(gw: RunningGateway, client: anthropic.Anthropic,
                                                              upstream: FakeOpenAI, tag: str) -> None:
    # temperature: SDK 2.10 speaks the 2026-10-21 API, which has none; older clients (Claude Code) send it.
    message = client.messages.create(model="gpt", max_tokens=50, system="Be brief.",
                                     stop_sequences=["\n\n"], messages=[{"role": "user", "content": tag}],
                                     extra_body={"metadata": {"user_id": "end-user-7", "test": tag},
                                                 "temperature": 0.2})
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == f"fake says: {tag}"  # type: ignore[union-attr]
    assert (message.role, message.stop_reason, message.model) == ("assistant", "end_turn", "gpt-4o-mini-2024-07-18")
    assert message.id.startswith("msg_")
    # The fake's usage: 11 prompt tokens, 2 of them cache reads; 7 completion tokens.
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens, message.usage.output_tokens) == (9, 2, 7)

    body = sent_to(upstream, tag).body
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": tag}]
    assert (body["max_tokens"], body["temperature"], body["stop"], body["user"]) == (50, 0.2, ["\n\n"], "end-user-7")
    assert "metadata" not in body  # the gateway's own: read, not sent

    attrs = span_of(gw, tag)["attributes"]
    expected = {sc.OPERATION_NAME: "chat", sc.PROVIDER_NAME: "openai", sc.REQUEST_MODEL: "gpt",
                sc.RESPONSE_FINISH_REASONS: ["stop"], sc.USAGE_INPUT_TOKENS: 11, sc.USAGE_OUTPUT_TOKENS: 7,
                sc.END_USER: "end-user-7", sc.REQUEST_MAX_TOKENS: 50}
    assert {k: attrs.get(k) for k in expected} == expected


def test_stream_to_an_openai_upstream_is_anthropics_event_sequence(gw: RunningGateway, client: anthropic.Anthropic,
                                                                   tag: str) -> None:
    with client.messages.stream(model="gpt", max_tokens=50, messages=[{"role": "user", "content": tag}],
                                extra_body=meta(tag)) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[:2] == ["message_start", "content_block_start"] and kinds[-2:] == ["message_delta", "message_stop"]
    assert "text" in kinds and "content_block_stop" in kinds
    assert final.content[0].text == f"fake says: {tag}"  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens, final.usage.output_tokens) == (9, 2, 7)
    attrs = span_of(gw, tag)["attributes"]
    assert (attrs[sc.STREAM_OUTCOME], attrs[sc.USAGE_OUTPUT_TOKENS]) == ("completed", 7)


def test_create_to_an_anthropic_upstream_keeps_text_stop_reason_and_cache_counts(
        gw: RunningGateway, client: anthropic.Anthropic, fake: FakeAnthropic, tag: str) -> None:
    message = client.messages.create(model="claude", max_tokens=50, system=[{"type": "text", "text": "Be brief."}],
                                     messages=[{"role": "user", "content": tag}], extra_body=meta(tag))
    assert message.content[0].text == f"fake claude says: {tag}"  # type: ignore[union-attr]
    assert (message.stop_reason, message.model, message.id) == ("end_turn", CLAUDE, "msg_fake01")
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens,
            usage.output_tokens) == (11, 5, 3, 4)
    request = sent_to(fake, tag)
    assert request.body["system"] == [{"type": "text", "text": "Be brief."}]
    # Passed through as the client wrote it; metadata.test is LiteLLM's (the gateway's), not Anthropic's.
    assert request.body["messages"] == [{"role": "user", "content": tag}] and "metadata" not in request.body
    attrs = span_of(gw, tag)["attributes"]
    assert (attrs[sc.PROVIDER_NAME], attrs[sc.USAGE_CACHE_READ_INPUT_TOKENS], attrs[sc.USAGE_COST] > 0) == (
        "anthropic", 5, True)


def test_stream_to_an_anthropic_upstream(gw: RunningGateway, client: anthropic.Anthropic, tag: str) -> None:
    with client.messages.stream(model="claude", max_tokens=50, messages=[{"role": "user", "content": tag}],
                                extra_body=meta(tag)) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == f"fake claude says: {tag}"
    assert (final.stop_reason, final.usage.input_tokens, final.usage.cache_read_input_tokens,
            final.usage.output_tokens) == ("end_turn", 11, 5, 4)
    assert span_of(gw, tag)["attributes"][sc.STREAM_OUTCOME] == "completed"


def test_max_tokens_reached_is_max_tokens(client: anthropic.Anthropic, tag: str) -> None:
    message = client.messages.create(model="claude", max_tokens=2, messages=[{"role": "user", "content": tag}])
    assert (message.stop_reason, message.content[0].text) == ("max_tokens", "fake claude")  # type: ignore[union-attr]


# --- tools -------------------------------------------------------------------------------------


def test_tools_to_an_anthropic_upstream_round_trip(client: anthropic.Anthropic, fake: FakeAnthropic,
                                                   tag: str) -> None:
    question = {"role": "user", "content": f"weather? {tag}"}
    message = client.messages.create(model="claude", max_tokens=50, tools=[WEATHER],  # type: ignore[list-item]
                                     tool_choice={"type": "any"}, messages=[question])  # type: ignore[list-item]
    [call] = message.content
    assert (call.type, call.name, call.input, message.stop_reason) == (  # type: ignore[union-attr]
        "tool_use", "get_weather", {"city": "Paris", "days": 2}, "tool_use")
    assert sent_to(fake, tag).body["tool_choice"] == {"type": "any"}

    answer = client.messages.create(model="claude", max_tokens=50, tools=[WEATHER],  # type: ignore[list-item]
                                    messages=[question, {"role": "assistant", "content": message.content},
                                              {"role": "user", "content": [  # type: ignore[list-item]
                                                  {"type": "tool_result", "tool_use_id": call.id,  # type: ignore[union-attr]
                                                   "content": "sunny"}]}])
    assert answer.stop_reason == "end_turn" and "sunny" in answer.content[0].text  # type: ignore[union-attr]


def test_a_streamed_tool_call_is_an_input_json_delta(client: anthropic.Anthropic, tag: str) -> None:
    with client.messages.stream(model="claude", max_tokens=50, tools=[WEATHER],  # type: ignore[list-item]
                                messages=[{"role": "user", "content": tag}]) as stream:
        kinds = [(event.type, getattr(getattr(event, "delta", None), "type", None)) for event in stream]
        final = stream.get_final_message()
    assert ("content_block_delta", "input_json_delta") in kinds
    [call] = final.content
    assert (call.type, call.input, final.stop_reason) == ("tool_use", {"city": "Paris", "days": 2},  # type: ignore[union-attr]
                                                          "tool_use")


def tool_answer() -> dict[str, Any]:
    return {"id": "chatcmpl-t", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}}


def tool_events() -> tuple[bytes, ...]:
    base = {"id": "chatcmpl-t", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    deltas = [{"role": "assistant", "content": "Checking."},
              {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                               "function": {"name": "get_weather", "arguments": ""}}]},
              {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]},
              {"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}]
    chunks = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    chunks.append({**base, "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}})
    return (*(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks), b"data: [DONE]\n\n")


def test_tools_to_an_openai_upstream_plain_and_streamed(client: anthropic.Anthropic, upstream: FakeOpenAI,
                                                        tag: str) -> None:
    upstream.script(Behaviour(body=json.dumps(tool_answer()).encode()), Behaviour(events=tool_events()))
    message = client.messages.create(model="gpt", max_tokens=50, tools=[WEATHER],  # type: ignore[list-item]
                                     tool_choice={"type": "tool", "name": "get_weather"},
                                     messages=[{"role": "user", "content": tag}])
    [call] = message.content
    assert (call.type, call.id, call.input, message.stop_reason) == (  # type: ignore[union-attr]
        "tool_use", "call_1", {"city": "Oslo"}, "tool_use")
    body = sent_to(upstream, tag).body
    assert body["tools"] == [{"type": "function", "function": {"name": "get_weather", "description": "The forecast",
                                                                "parameters": WEATHER["input_schema"]}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}

    with client.messages.stream(model="gpt", max_tokens=50, tools=[WEATHER],  # type: ignore[list-item]
                                messages=[{"role": "user", "content": tag}]) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert (final.content[1].input, final.stop_reason, final.usage.output_tokens) == (  # type: ignore[union-attr]
        {"city": "Oslo"}, "tool_use", 5)


# --- keys and errors ---------------------------------------------------------------------------


def test_the_key_may_come_as_a_bearer_token(gw: RunningGateway, key: str) -> None:
    with anthropic.Anthropic(base_url=gw.base_url, auth_token=key, max_retries=0) as sdk:
        message = sdk.messages.create(model="mock", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text.endswith("You said: hi")  # type: ignore[union-attr]


def error_of(reply: httpx.Response) -> tuple[int, str]:
    body = reply.json()
    assert body["type"] == "error" and isinstance(body["error"]["message"], str), body
    return reply.status_code, body["error"]["type"]


def post(gw: RunningGateway, body: Any, key: str | None, path: str = "/v1/messages") -> httpx.Response:
    with loopback_client() as http:
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"} if key else {}
        return http.post(gw.base_url + path, json=body, headers=headers)


def test_errors_are_in_anthropics_shape_with_its_statuses(gw: RunningGateway, key: str) -> None:
    hello = [{"role": "user", "content": "hi"}]
    assert error_of(post(gw, {"model": "gpt", "max_tokens": 5, "messages": hello}, "sk-wrong")) == (
        401, "authentication_error")
    assert error_of(post(gw, {"model": "gpt", "max_tokens": 5, "messages": hello}, None)) == (
        401, "authentication_error")
    missing = post(gw, {"model": "gpt", "messages": hello}, key)
    assert error_of(missing) == (400, "invalid_request_error") and "max_tokens" in missing.json()["error"]["message"]
    assert error_of(post(gw, {"model": "nope", "max_tokens": 5, "messages": hello}, key)) == (404, "not_found_error")
    assert error_of(post(gw, {"model": "gpt", "max_tokens": 5, "messages": [{"role": "bot", "content": "x"}]},
                         key)) == (400, "invalid_request_error")


def test_sdk_errors_name_the_anthropic_error_classes(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as not_found:
        client.messages.create(model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert not_found.value.status_code == 404 and not_found.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


@pytest.mark.parametrize(("status", "expected"), [(429, (429, "rate_limit_error")),
                                                  (400, (400, "invalid_request_error"))])
def test_an_upstream_error_keeps_its_status_and_no_secret(gw: RunningGateway, upstream: FakeOpenAI, key: str,
                                                          status: int, expected: tuple[int, str], tag: str) -> None:
    upstream.script(Behaviour(status=status))
    reply = post(gw, {"model": "gpt", "max_tokens": 5, "messages": [{"role": "user", "content": tag}],
                      "metadata": {"test": tag}}, key)
    assert error_of(reply) == expected
    assert LEAKED_KEY not in reply.text and UPSTREAM_KEY not in reply.text
    span = span_of(gw, tag)
    assert LEAKED_KEY not in json.dumps(span) and UPSTREAM_KEY not in json.dumps(span)


def test_an_error_in_an_anthropic_stream_is_an_error_event(client: anthropic.Anthropic, fake: FakeAnthropic) -> None:
    fake.script(Reply(stream_error="overloaded_error"))
    seen: list[str] = []
    words = [{"role": "user", "content": "one two three four"}]
    with pytest.raises(anthropic.APIStatusError) as failed, \
            client.messages.stream(model="claude", max_tokens=50, messages=words) as stream:  # type: ignore[arg-type]
        seen.extend(event.type for event in stream)
    assert seen[0] == "message_start" and "message_stop" not in seen
    # The upstream's own type goes on when it is one of Anthropic's.
    assert failed.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


# --- count_tokens ------------------------------------------------------------------------------


def test_count_tokens_estimates_without_a_call(gw: RunningGateway, client: anthropic.Anthropic, key: str,
                                               upstream: FakeOpenAI) -> None:
    before = len(upstream.requests)
    counted = client.messages.count_tokens(model="gpt", system="Be brief.", tools=[WEATHER],  # type: ignore[list-item]
                                           messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    assert 10 < counted.input_tokens < 100
    assert len(upstream.requests) == before
    assert error_of(post(gw, {"model": "gpt", "messages": []}, key, "/v1/messages/count_tokens")) == (
        400, "invalid_request_error")
    assert error_of(post(gw, {"model": "gpt", "messages": []}, "sk-wrong", "/v1/messages/count_tokens")) == (
        401, "authentication_error")


# --- generated requests ------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)
_text_block = st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=8)})
_block = _text_block | st.fixed_dictionaries({"type": st.sampled_from(["image", "tool_use", "tool_result", "x"])},
                                             optional={"source": _json, "id": _json, "name": _json, "input": _json,
                                                       "tool_use_id": _json, "content": _json, "is_error": _json})
_message = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", 3]),
                                  "content": st.text(max_size=8) | st.lists(_block, max_size=3) | _json})
_plain = st.fixed_dictionaries({"role": st.just("user"), "content": st.text(min_size=1, max_size=8)
                                | st.lists(_text_block, min_size=1, max_size=2)})


def _mostly(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Well formed three times in four, so answers (200) and refusals (4xx) both occur often."""
    return st.one_of(good, good, good, _json)


_body = st.fixed_dictionaries(
    {"model": st.sampled_from(["mock", "gpt", "mock", "gpt", "nope", "", None, 3]),
     "max_tokens": st.sampled_from([1, 20, 50, 20, 0, None, "5"]),
     "messages": st.lists(st.one_of(_plain, _plain, _plain, _message), min_size=1, max_size=3) | _json},
    optional={"system": _mostly(st.text(max_size=5) | st.lists(_text_block, max_size=2)),
              "tools": _mostly(st.lists(st.just(WEATHER), max_size=2)),
              "tool_choice": _mostly(st.sampled_from([{"type": "auto"}, {"type": "none"}])),
              "stop_sequences": _mostly(st.lists(st.text(min_size=1, max_size=3), max_size=2)),
              "metadata": _mostly(st.fixed_dictionaries({}, optional={"user_id": st.text(max_size=4)})),
              "temperature": _mostly(st.floats(0, 1)), "stream": _mostly(st.booleans())})


@settings(max_examples=100, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=_body)
def test_generated_requests_are_answered_or_refused_never_a_500(gw: RunningGateway, key: str,
                                                                body: dict[str, Any]) -> None:
    reply = post(gw, body, key)
    event(f"status {reply.status_code}")  # --hypothesis-show-statistics: answers and refusals both occur
    if reply.status_code == 200:
        if body.get("stream") is True:
            assert "event: message_start" in reply.text or "event: error" in reply.text
        else:
            assert reply.json()["type"] == "message"
    else:
        assert 400 <= reply.status_code < 500, reply.text
        error_of(reply)


# --- the team's destinations -------------------------------------------------------------------


def test_each_call_is_in_the_teams_destination_once(upstream: FakeOpenAI, fake: FakeAnthropic,
                                                    tmp_path: Path) -> None:
    from tests.support.teams import langfuse_projects

    with database("sqlite", tmp_path) as db, langfuse_projects("team") as projects:
        config = {"model_list": models(upstream.api_base, fake.url),
                  "general_settings": {"master_key": MASTER_KEY, "database_url": db.url},
                  "spangate_settings": {"team_poll_seconds": 0.2}}
        with running_gateway(config, env={"SPANGATE_SALT_KEY": SALT_KEY, **db.env}, data_dir=tmp_path) as gw, \
                admin_client(gw.base_url) as admin:
            team = admin.post("/team/new", json={"team_alias": "dialects"}).json()["team_id"]
            assert admin.post(f"/team/{team}/callback", json=projects["team"].callback_body()).status_code == 200
            team_key = admin.post("/key/generate", json={"team_id": team}).json()["key"]
            with anthropic.Anthropic(base_url=gw.base_url, api_key=team_key, max_retries=0) as sdk:
                for model in ("gpt", "claude"):
                    sdk.messages.create(model=model, max_tokens=20, messages=[{"role": "user", "content": "hi"}])
                    with sdk.messages.stream(model=model, max_tokens=20,
                                             messages=[{"role": "user", "content": "hi"}]) as stream:
                        stream.get_final_message()
            projects["team"].wait_for(lambda spans: len(spans) >= 4)
    spans = projects["team"].spans()  # after the stop, which flushes: a duplicate would be here by now
    assert len(spans) == 4 and {s["attributes"]["spangate.team.id"] for s in spans} == {team}
    assert sorted(s["attributes"][sc.REQUEST_MODEL] for s in spans) == ["claude", "claude", "gpt", "gpt"]
