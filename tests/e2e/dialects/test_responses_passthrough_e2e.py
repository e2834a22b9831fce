"""``POST /v1/responses`` passed through to an OpenAI deployment that serves Responses
(``model_info.supports_responses``): the real gateway, the ``openai`` SDK's ``responses.create``, the fake
OpenAI's ``/v1/responses`` and the team's own destination (a loopback Langfuse project).

The fake gets the client's Responses body (never a chat body), the client gets the fake's Response (its id
intact), and the one span reads the chat completion it amounts to. A deployment without the flag is still
translated to chat. Streams pass through too: OpenAI's events as they are, the span reading their chat.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import OpenAI

from contracts import semconv as sc
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.teams import (
    MASTER_KEY,
    LangfuseProject,
    admin_client,
    database,
    langfuse_projects,
    new_key,
    new_team,
    openai_client,
)
from tests.support.upstream import LEAKED_KEY, RESPONSE_ID, Behaviour, FakeOpenAI, response_event, response_events

TAG = "langfuse.trace.metadata.test"
WEATHER = {"type": "function", "name": "get_weather", "description": "The forecast",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as running:
        yield running


@pytest.fixture(scope="module")
def project() -> Iterator[LangfuseProject]:
    with langfuse_projects("team") as projects:
        yield projects["team"]


@pytest.fixture(scope="module")
def gw(upstream: FakeOpenAI, project: LangfuseProject,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    data = tmp_path_factory.mktemp("responses-passthrough")
    openai_params = {"model": "openai/gpt-4o-mini", "api_base": upstream.api_base, "api_key": LEAKED_KEY}
    with database("sqlite", data) as db:
        config = {
            "model_list": [
                {"model_name": "direct", "litellm_params": {**openai_params, "temperature": 0.5},
                 "model_info": {"supports_responses": True}},
                {"model_name": "translated", "litellm_params": openai_params},
            ],
            "general_settings": {"master_key": MASTER_KEY, "database_url": db.url},
            "spangate_settings": {"team_poll_seconds": 0.2},
        }
        with running_gateway(config, data_dir=data, env={"SPANGATE_SALT_KEY": "passthrough-e2e-salt-01"}) as running:
            yield running


@pytest.fixture(scope="module")
def team_key(gw: RunningGateway, project: LangfuseProject) -> str:
    with admin_client(gw.base_url) as admin:
        team = new_team(admin, team_alias="passthrough")
        reply = admin.post(f"/team/{team}/callback", json=project.callback_body())
        assert reply.status_code == 200, reply.text
        return new_key(admin, team_id=team)


@pytest.fixture
def client(gw: RunningGateway, team_key: str) -> Iterator[OpenAI]:
    with openai_client(gw.base_url, team_key) as sdk:
        yield sdk


@pytest.fixture
def tag(request: pytest.FixtureRequest) -> str:
    return request.node.name


def span_of(project: LangfuseProject, tag: str) -> dict[str, Any]:
    """The one span of the call tagged ``tag`` in the team's project (a second one fails the test)."""
    project.wait_for(lambda spans: any(s["attributes"].get(TAG) == tag for s in spans))
    [span] = [s for s in project.spans() if s["attributes"].get(TAG) == tag]
    return span


def sent(fake: FakeOpenAI, tag: str) -> Any:
    [match] = [r for r in fake.requests if tag in json.dumps(r.body)]
    return match


def test_a_call_goes_to_responses_as_it_is_and_comes_back_as_it_is(
        client: OpenAI, upstream: FakeOpenAI, project: LangfuseProject, tag: str) -> None:
    response = client.responses.create(model="direct", input=tag, instructions="Be brief.", max_output_tokens=40,
                                       metadata={"test": tag})
    assert response.id == RESPONSE_ID and response.output_text == f"fake responds: {tag}"
    assert response.store is True  # OpenAI's answer, not the gateway's translation (which says false)

    received = sent(upstream, tag)
    assert received.path == "/v1/responses" and received.headers["authorization"] == f"Bearer {LEAKED_KEY}"
    assert received.body == {"model": "gpt-4o-mini", "input": tag, "instructions": "Be brief.",
                             "max_output_tokens": 40, "temperature": 0.5}  # the deployment's default under it

    attrs = span_of(project, tag)["attributes"]
    assert attrs[sc.OPERATION_NAME] == "chat" and attrs[sc.PROVIDER_NAME] == "openai"
    assert (attrs[sc.REQUEST_MODEL], attrs[sc.RESPONSE_MODEL]) == ("direct", "gpt-4o-mini-2024-07-18")
    assert attrs[sc.RESPONSE_ID] == RESPONSE_ID and attrs[sc.RESPONSE_FINISH_REASONS] == ["stop"]
    assert (attrs[sc.USAGE_INPUT_TOKENS], attrs[sc.USAGE_OUTPUT_TOKENS]) == (13, 9)


def test_function_calls_come_back_as_they_are_and_the_span_says_tool_calls(
        client: OpenAI, upstream: FakeOpenAI, project: LangfuseProject, tag: str) -> None:
    answer = {"id": "resp_tools1", "object": "response", "created_at": 1_700_000_000, "status": "completed",
              "model": "gpt-4o-mini", "output": [{"type": "function_call", "id": "fc_1", "call_id": "call_9",
                                                  "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}",
                                                  "status": "completed"}],
              "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
              "usage": {"input_tokens": 30, "output_tokens": 12, "total_tokens": 42}}
    upstream.script(Behaviour(body=json.dumps(answer).encode()))
    response = client.responses.create(model="direct", input=tag, tools=[WEATHER], metadata={"test": tag})
    [item] = response.output
    assert response.id == "resp_tools1" and item.type == "function_call" and item.call_id == "call_9"
    assert sent(upstream, tag).body["tools"] == [WEATHER]  # flat, as Responses has them: not chat's nesting
    attrs = span_of(project, tag)["attributes"]
    assert attrs[sc.RESPONSE_FINISH_REASONS] == ["tool_calls"] and attrs[sc.USAGE_OUTPUT_TOKENS] == 12


def test_an_upstream_429_is_openais_error_json_without_the_key(client: OpenAI, upstream: FakeOpenAI,
                                                               tag: str) -> None:
    upstream.script(Behaviour(status=429, retry_after="7"))
    with pytest.raises(openai.RateLimitError) as limited:
        client.responses.create(model="direct", input=tag, metadata={"test": tag})
    assert upstream.requests[-1].path == "/v1/responses"
    assert isinstance(limited.value.body, dict) and limited.value.body["code"] == "rate_limit_exceeded"
    assert LEAKED_KEY not in limited.value.response.text and limited.value.response.headers["retry-after"] == "7"


def test_a_deployment_without_the_flag_is_translated_to_chat(client: OpenAI, upstream: FakeOpenAI,
                                                             project: LangfuseProject, tag: str) -> None:
    response = client.responses.create(model="translated", input=tag, metadata={"test": tag})
    assert response.output_text == f"fake says: {tag}" and response.id != RESPONSE_ID
    assert sent(upstream, tag).path == "/v1/chat/completions"
    span_of(project, tag)


def test_a_stream_goes_through_as_it_is_and_the_span_reads_its_chat(
        client: OpenAI, upstream: FakeOpenAI, project: LangfuseProject, tag: str) -> None:
    with client.responses.stream(model="direct", input=tag, metadata={"test": tag}) as stream:
        numbers = [event.sequence_number for event in stream]
        final = stream.get_final_response()
    assert final.id == RESPONSE_ID and final.output_text == f"fake responds: {tag}"
    assert numbers == list(range(10))  # OpenAI's events, every one, in order
    received = sent(upstream, tag)
    assert received.path == "/v1/responses" and received.body["stream"] is True
    assert "stream_options" not in received.body  # Responses streams carry their usage anyway
    attrs = span_of(project, tag)["attributes"]
    assert attrs[sc.RESPONSE_ID] == RESPONSE_ID and attrs[sc.RESPONSE_FINISH_REASONS] == ["stop"]
    assert (attrs[sc.USAGE_INPUT_TOKENS], attrs[sc.USAGE_OUTPUT_TOKENS]) == (13, 9)


def test_an_error_in_the_stream_is_the_gateways_scrubbed_error_event(client: OpenAI, upstream: FakeOpenAI,
                                                                    tag: str) -> None:
    first = response_events({"model": "gpt-4o-mini", "input": tag})[:5]
    failure = response_event("error", {"code": "server_error", "message": f"broke, key {LEAKED_KEY}",
                                       "param": None}, 5)
    upstream.script(Behaviour(events=(*first, failure, first[4])))
    with client.responses.create(model="direct", input=tag, metadata={"test": tag}, stream=True) as stream:
        events = list(stream)
    assert [e.type for e in events] == ["response.created", "response.in_progress", "response.output_item.added",
                                        "response.content_part.added", "response.output_text.delta", "error"]
    error = events[-1]
    assert error.sequence_number == 5 and "broke" in error.message and LEAKED_KEY not in error.message
    # (the team's destination takes successes only: the failed span is not read here)
    assert [e.sequence_number for e in events] == list(range(6))


def test_the_raw_request_is_the_responses_request_without_the_key(client: OpenAI, upstream: FakeOpenAI,
                                                                  project: LangfuseProject, tag: str) -> None:
    # The SDK types metadata as strings, and OpenAI refuses others (the fake too): that it answers shows the
    # gateway's own metadata stayed behind.
    client.responses.create(model="direct", input=tag,
                            extra_body={"metadata": {"test": tag, "log_raw_request": True}})
    raw = span_of(project, tag)["attributes"]["langfuse.trace.metadata.raw_request"]  # Langfuse's encoding
    assert raw.startswith(f"curl -X POST '{upstream.api_base}/responses'") and f'"input": "{tag}"' in raw
    assert LEAKED_KEY not in raw and "log_raw_request" not in raw
