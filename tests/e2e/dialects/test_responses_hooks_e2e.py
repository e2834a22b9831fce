"""``/v1/responses`` calls get the hooks a chat call gets: content moderation of the input and of the
streamed output (the client reads the block as the Responses ``error`` event), and the seed's
``CustomLogger`` with chat's kwargs and ``response_obj``. Real gateway, ``openai`` SDK, fake upstream,
the loopback Content Safety stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from app.litellm.loader import load_callback
from tests.support.callbacks import write_seed
from tests.support.content_safety import ContentSafetyStandIn
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.upstream import FakeOpenAI

SEED = "custom_callbacks.proxy_handler_instance"
IN_MARK = "INPUT-MARK-31"
OUT_MARK = "says: OUT-MARK-77"  # only in the fake's answer ("fake says: <prompt>")


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def cs() -> Iterator[ContentSafetyStandIn]:
    with ContentSafetyStandIn(key="cs-e2e-key") as stand_in:
        stand_in.score(IN_MARK, Hate=6)
        stand_in.score(OUT_MARK, Violence=4)
        yield stand_in


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("responses-hooks")
    write_seed(path)
    return path


@pytest.fixture(scope="module")
def gw(upstream: FakeOpenAI, cs: ContentSafetyStandIn, folder: Path) -> Iterator[RunningGateway]:
    config = {
        "model_list": [{"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o-mini",
                                                                "api_base": upstream.api_base,
                                                                "api_key": "sk-upstream-0123456789"}}],
        "litellm_settings": {"callbacks": ["azure_content_safety", SEED],
                             "azure_content_safety_params": {"endpoint": cs.endpoint, "key": "cs-e2e-key",
                                                             "stream_mode": "end"}},
    }
    with running_gateway(config, data_dir=folder) as running:
        yield running


@pytest.fixture
def client(gw: RunningGateway) -> Iterator[OpenAI]:
    with OpenAI(base_url=gw.openai_base_url, api_key="anything", max_retries=0, timeout=10) as sdk:
        yield sdk


def test_a_blocked_input_is_a_400_and_the_model_is_never_called(client: OpenAI, upstream: FakeOpenAI) -> None:
    before = len(upstream.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt", input=[{"role": "user", "content": [
            {"type": "input_text", "text": "fine"}, {"type": "input_text", "text": f"please {IN_MARK}"}]}])
    error = caught.value.body
    assert isinstance(error, dict) and error["code"] == "moderation_blocked" and error["source"] == "input"
    assert len(upstream.requests) == before


def test_a_blocked_stream_ends_with_the_responses_error_event(client: OpenAI) -> None:
    events = list(client.responses.create(model="gpt", input="OUT-MARK-77 one two", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "error"
    assert "response.completed" not in kinds
    last = events[-1]
    assert last.type == "error" and last.code == "moderation_blocked"
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_the_custom_logger_gets_chat_kwargs_and_response_obj(client: OpenAI, folder: Path) -> None:
    handler = load_callback(SEED, folder).obj
    seen = len(handler.recorded.of("async_log_success_event"))
    reply = client.responses.create(model="gpt", input="good morning", instructions="Be kind.", user="u-1")
    successes = handler.recorded.wait_for("async_log_success_event", seen + 1)
    kwargs, response_obj, _start, _end = successes[-1]
    assert reply.output_text == "fake says: good morning"
    assert kwargs["call_type"] == "acompletion" and kwargs["user"] == "u-1"
    assert kwargs["messages"] == [{"role": "system", "content": "Be kind."},
                                  {"role": "user", "content": "good morning"}]
    assert _content(response_obj) == "fake says: good morning"


def _content(response_obj: Any) -> Any:
    choice = response_obj["choices"][0] if isinstance(response_obj, dict) else response_obj.choices[0]
    message = choice["message"] if isinstance(choice, dict) else choice.message
    return message["content"] if isinstance(message, dict) else message.content
