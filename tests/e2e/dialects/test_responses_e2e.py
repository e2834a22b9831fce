"""``POST /v1/responses`` end to end: the real gateway on loopback, the ``openai`` SDK's ``responses``, an
OpenAI-compatible fake upstream (``tests/support/upstream.py``) and the fake Anthropic Messages API
(``tests/support/fake_anthropic.py``), and the team's own destination (a loopback Langfuse project).

The caller's key belongs to a team whose callback is that project: every call must be in it once, as one
``chat`` span. Each test tags its call (``metadata.test``) and finds its span by the tag.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from openai import OpenAI

from contracts import semconv as sc
from tests.app.dialects.test_responses_generated import requests as generated_requests
from tests.support.fake_anthropic import KEY as ANTHROPIC_KEY
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.teams import (
    MASTER_KEY,
    LangfuseProject,
    admin_client,
    database,
    langfuse_projects,
    loopback_client,
    new_key,
    new_team,
    openai_client,
)
from tests.support.upstream import LEAKED_KEY, Behaviour, FakeOpenAI

TAG = "langfuse.trace.metadata.test"  # the Langfuse encoding of metadata.test
CLAUDE = "claude-haiku-4-5"
WEATHER = {"type": "function", "name": "get_weather", "description": "The forecast",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as running:
        yield running


@pytest.fixture(scope="module")
def claude() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(ANTHROPIC_KEY) as running:
        yield running


@pytest.fixture(scope="module")
def project() -> Iterator[LangfuseProject]:
    with langfuse_projects("team") as projects:
        yield projects["team"]


@pytest.fixture(scope="module")
def gw(upstream: FakeOpenAI, claude: FakeAnthropic, project: LangfuseProject,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    data = tmp_path_factory.mktemp("responses")
    with database("sqlite", data) as db:
        config = {
            "model_list": [
                # the deployment's key is the one the fake's errors leak: the gateway must scrub it
                {"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": upstream.api_base,
                                                         "api_key": LEAKED_KEY}},
                {"model_name": "claude", "litellm_params": {"model": f"anthropic/{CLAUDE}", "api_base": claude.url,
                                                            "api_key": ANTHROPIC_KEY}},
            ],
            "general_settings": {"master_key": MASTER_KEY, "database_url": db.url},
            "spangate_settings": {"team_poll_seconds": 0.2},
        }
        with running_gateway(config, data_dir=data, env={"SPANGATE_SALT_KEY": "responses-e2e-salt-0123"}) as running:
            yield running


@pytest.fixture(scope="module")
def team_key(gw: RunningGateway, project: LangfuseProject) -> str:
    with admin_client(gw.base_url) as admin:
        team = new_team(admin, team_alias="responses")
        reply = admin.post(f"/team/{team}/callback", json=project.callback_body())
        assert reply.status_code == 200, reply.text
        return new_key(admin, team_id=team)


@pytest.fixture
def client(gw: RunningGateway, team_key: str) -> Iterator[OpenAI]:
    with openai_client(gw.base_url, team_key) as sdk:
        yield sdk


@pytest.fixture
def tag(request: pytest.FixtureRequest) -> str:
    return request.node.name.replace("[", "-").rstrip("]")


def span_of(project: LangfuseProject, tag: str) -> dict[str, Any]:
    """The one span of the call tagged ``tag`` in the team's project (a second one fails the test)."""
    project.wait_for(lambda spans: any(s["attributes"].get(TAG) == tag for s in spans))
    [span] = [s for s in project.spans() if s["attributes"].get(TAG) == tag]
    return span


def sent(fake: FakeOpenAI | FakeAnthropic, tag: str) -> Any:
    [match] = [r for r in fake.requests if tag in json.dumps(r.body)]
    return match


def assert_chat_span(span: dict[str, Any], provider: str, model: str, finish: str) -> dict[str, Any]:
    attrs = span["attributes"]
    assert attrs[sc.OPERATION_NAME] == "chat" and attrs[sc.PROVIDER_NAME] == provider
    assert attrs[sc.REQUEST_MODEL] == model and attrs[sc.RESPONSE_FINISH_REASONS] == [finish]
    return attrs


# --- to an OpenAI-compatible upstream ------------------------------------------------------------------


def test_a_plain_call_with_instructions(client: OpenAI, upstream: FakeOpenAI, project: LangfuseProject,
                                        tag: str) -> None:
    response = client.responses.create(model="gpt", input=tag, instructions="Be brief.", max_output_tokens=40,
                                       temperature=0.3, metadata={"test": tag})
    assert response.output_text == f"fake says: {tag}" and response.status == "completed"
    assert response.object == "response" and response.id.startswith("resp_") and response.store is False
    assert response.model == "gpt-4o-mini-2024-07-18" and response.instructions == "Be brief."
    usage = response.usage
    assert usage is not None and (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (11, 7, 18)
    assert (usage.input_tokens_details.cached_tokens, usage.output_tokens_details.reasoning_tokens) == (2, 3)

    body = sent(upstream, tag).body
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": tag}]
    assert (body["max_completion_tokens"], body["temperature"]) == (40, 0.3) and "metadata" not in body
    attrs = assert_chat_span(span_of(project, tag), "openai", "gpt", "stop")
    assert (attrs[sc.USAGE_INPUT_TOKENS], attrs[sc.USAGE_OUTPUT_TOKENS]) == (11, 7)


def test_tools_go_as_chat_tools_and_tool_calls_come_back_as_function_calls(
        client: OpenAI, upstream: FakeOpenAI, project: LangfuseProject, tag: str) -> None:
    call = {"id": "call_7", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}
    answer = {"id": "chatcmpl-t", "object": "chat.completion", "created": 1_700_000_000, "model": "gpt-4o-mini",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                           "finish_reason": "tool_calls"}],
              "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}}
    upstream.script(Behaviour(body=json.dumps(answer).encode()))
    response = client.responses.create(model="gpt", input=tag, tools=[WEATHER], tool_choice="required",
                                       metadata={"test": tag})
    [item] = response.output
    assert item.type == "function_call" and (item.call_id, item.name, item.arguments) == (
        "call_7", "get_weather", "{\"city\":\"Oslo\"}")
    body = sent(upstream, tag).body
    assert body["tools"] == [{"type": "function", "function": {k: WEATHER[k] for k in
                                                               ("name", "description", "parameters")}}]
    assert body["tool_choice"] == "required"
    assert_chat_span(span_of(project, tag), "openai", "gpt", "tool_calls")


def test_a_stream_with_the_sdk_stream_helper(client: OpenAI, project: LangfuseProject, tag: str) -> None:
    with client.responses.stream(model="gpt", input=tag, metadata={"test": tag}) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == f"fake says: {tag}" and len(deltas) > 1
    assert final.status == "completed" and final.usage is not None and final.usage.total_tokens == 18
    attrs = assert_chat_span(span_of(project, tag), "openai", "gpt", "stop")
    assert attrs[sc.USAGE_OUTPUT_TOKENS] == 7


def test_create_with_stream_true_gives_the_event_sequence(client: OpenAI, project: LangfuseProject,
                                                          tag: str) -> None:
    kinds = [event.type for event in client.responses.create(model="gpt", input=tag, stream=True,
                                                             metadata={"test": tag})]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert set(kinds[4:-4]) == {"response.output_text.delta"}
    span_of(project, tag)


def test_an_upstream_429_is_openais_error_json_without_the_key(client: OpenAI, upstream: FakeOpenAI,
                                                               tag: str) -> None:
    upstream.script(Behaviour(status=429))
    with pytest.raises(openai.RateLimitError) as limited:
        client.responses.create(model="gpt", input=tag, metadata={"test": tag})
    error = limited.value.body
    assert isinstance(error, dict) and error["code"] == "rate_limit_exceeded"
    assert LEAKED_KEY not in limited.value.response.text


# --- to an Anthropic upstream ----------------------------------------------------------------------------


def test_a_plain_call_to_claude(client: OpenAI, claude: FakeAnthropic, project: LangfuseProject, tag: str) -> None:
    response = client.responses.create(model="claude", input=[{"role": "user", "content": tag}],
                                       instructions="Be brief.", metadata={"test": tag})
    assert response.output_text == f"fake claude says: {tag}" and response.status == "completed"
    usage = response.usage
    assert usage is not None and (usage.input_tokens, usage.input_tokens_details.cached_tokens) == (19, 5)
    assert usage.input_tokens_details.cache_write_tokens == 3
    assert sent(claude, tag).body["system"] == [{"type": "text", "text": "Be brief."}]
    attrs = assert_chat_span(span_of(project, tag), "anthropic", "claude", "stop")
    assert attrs[sc.RESPONSE_MODEL] == CLAUDE and attrs[sc.USAGE_COST] > 0


def test_a_tool_round_trip_with_claude(client: OpenAI, claude: FakeAnthropic, tag: str) -> None:
    first = client.responses.create(model="claude", input=tag, tools=[WEATHER], metadata={"test": tag})
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris", "days": 2}
    follow_up = [{"role": "user", "content": tag}, {"type": "function_call", "call_id": call.call_id,
                                                     "name": call.name, "arguments": call.arguments},
                 {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]
    second = client.responses.create(model="claude", input=follow_up, tools=[WEATHER],
                                     metadata={"test": tag + "-2"})
    assert second.output_text == "fake claude says: sunny"
    turns = [r for r in claude.requests if tag in json.dumps(r.body)][-1].body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[2]["content"][0]["type"] == "tool_result"


def test_a_stream_from_claude_cut_by_max_output_tokens(client: OpenAI, project: LangfuseProject, tag: str) -> None:
    # As OpenAI does, the last event is ``response.incomplete`` (the SDK helper's get_final_response wants
    # ``response.completed``, so the events are read as they come).
    events = list(client.responses.create(model="claude", input=tag, max_output_tokens=2, stream=True,
                                          metadata={"test": tag}))
    last = events[-1]
    assert last.type == "response.incomplete"
    final = last.response
    assert final.status == "incomplete" and final.incomplete_details is not None
    assert final.incomplete_details.reason == "max_output_tokens" and final.output_text == "fake claude"
    assert final.usage is not None and final.usage.output_tokens == 2
    assert_chat_span(span_of(project, tag), "anthropic", "claude", "length")


# --- refused, routed, generated ----------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "param"), [({"previous_response_id": "resp_1"}, "previous_response_id"),
                                              ({"background": True}, "background"),
                                              ({"tools": [{"type": "web_search"}]}, "tools[0].type")])
def test_what_the_gateway_cannot_do_is_a_400_naming_the_field(client: OpenAI, extra: dict[str, Any],
                                                              param: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="gpt", input="hi", extra_body=extra)
    assert isinstance(refused.value.body, dict) and refused.value.body["param"] == param


def test_the_route_without_v1_a_bad_key_and_no_retrieval(gw: RunningGateway, team_key: str) -> None:
    body = {"model": "gpt", "input": "hi"}
    with loopback_client() as http:
        served = http.post(f"{gw.base_url}/responses", json=body, headers={"Authorization": f"Bearer {team_key}"})
        stranger = http.post(f"{gw.base_url}/v1/responses", json=body, headers={"Authorization": "Bearer sk-nope"})
        stored = served.json()["id"]  # nothing is stored: retrieving a response by id is a 404
        retrieved = http.get(f"{gw.base_url}/v1/responses/{stored}", headers={"Authorization": f"Bearer {team_key}"})
    assert served.status_code == 200 and served.json()["output"][0]["content"][0]["text"] == "fake says: hi"
    assert stranger.status_code == 401 and stranger.json()["error"]["code"] == "invalid_api_key"
    assert retrieved.status_code == 404 and "error" in retrieved.json()


@settings(max_examples=60, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(body=generated_requests)
def test_generated_requests_never_produce_a_500(gw: RunningGateway, team_key: str, body: dict[str, Any]) -> None:
    with httpx.Client(timeout=10, trust_env=False) as http:
        reply = http.post(f"{gw.base_url}/v1/responses", json={**body, "stream": False},
                          headers={"Authorization": f"Bearer {team_key}"})
    assert reply.status_code < 500, reply.text
    assert LEAKED_KEY not in reply.text


def test_every_call_is_in_the_team_project_once_and_no_key_is(project: LangfuseProject, team_key: str) -> None:
    """Runs last in the module: the tagged spans so far, each exactly once, none with a credential."""
    tags = [s["attributes"].get(TAG) for s in project.spans() if s["attributes"].get(TAG)]
    assert tags and len(tags) == len(set(tags))
    project.assert_wire_format()
    seen = json.dumps(project.spans())
    assert all(key not in seen for key in (LEAKED_KEY, ANTHROPIC_KEY, team_key, MASTER_KEY))
