"""Which hooks a passed-through ``/v1/responses`` call keeps: a pre-call hook that leaves the request as it
is, the seed's ``CustomLogger`` (its ``response_obj`` is the chat completion the Response amounts to) and
output moderation of a whole answer (it reads that chat; a stream it moderates is translated). A pre-call
hook that changes the request keeps the chat translation (only chat carries what it did); an after-upstream
hook that replaces the answer has the client get the replacement, translated. Real gateway, ``openai``
SDK, fake upstream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from app.litellm.loader import load_callback
from tests.support.callbacks import write_seed
from tests.support.content_safety import ContentSafetyStandIn
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.upstream import RESPONSE_ID, FakeOpenAI

SEED = "custom_callbacks.proxy_handler_instance"
REWRITE = """
from app.custom_logger import CustomLogger


class Rewriter(CustomLogger):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        if "rewrite me" in data["messages"][-1]["content"]:
            data["messages"].insert(0, {"role": "system", "content": "Answer in French."})
        return data

    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        if "replace me" in data["messages"][-1]["content"]:
            response["choices"][0]["message"]["content"] = "replaced"
        return response


rewriter = Rewriter()
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("passthrough-hooks")
    write_seed(path)
    (path / "rewrite_hooks.py").write_text(REWRITE)
    return path


def deployment(upstream: FakeOpenAI) -> dict[str, Any]:
    return {"model_name": "gpt", "model_info": {"supports_responses": True},
            "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": upstream.api_base,
                               "api_key": "sk-upstream-0123456789"}}


@pytest.fixture(scope="module")
def client(upstream: FakeOpenAI, folder: Path) -> Iterator[OpenAI]:
    config = {"model_list": [deployment(upstream)],
              "litellm_settings": {"callbacks": ["rewrite_hooks.rewriter", SEED]}}
    with running_gateway(config, data_dir=folder) as gw, sdk_of(gw) as sdk:
        yield sdk


def sdk_of(gw: RunningGateway) -> OpenAI:
    return OpenAI(base_url=gw.openai_base_url, api_key="anything", max_retries=0, timeout=10)


def test_a_pre_call_hook_that_changes_nothing_keeps_the_pass_through_and_the_logger_reads_chat(
        client: OpenAI, upstream: FakeOpenAI, folder: Path) -> None:
    handler = load_callback(SEED, folder).obj
    seen = len(handler.recorded.of("async_log_success_event"))
    reply = client.responses.create(model="gpt", input="good morning", instructions="Be kind.")
    assert reply.id == RESPONSE_ID and upstream.requests[-1].path == "/v1/responses"
    kwargs, response_obj, _start, _end = handler.recorded.wait_for("async_log_success_event", seen + 1)[-1]
    assert kwargs["messages"] == [{"role": "system", "content": "Be kind."},
                                  {"role": "user", "content": "good morning"}]
    assert _content(response_obj) == "fake responds: good morning"


def test_a_pre_call_hook_that_changes_the_request_gets_the_chat_it_changed_sent(
        client: OpenAI, upstream: FakeOpenAI) -> None:
    reply = client.responses.create(model="gpt", input="rewrite me")
    received = upstream.requests[-1]
    assert received.path == "/v1/chat/completions" and reply.id != RESPONSE_ID
    assert received.body["messages"][0] == {"role": "system", "content": "Answer in French."}


def test_an_answer_a_hook_replaced_is_the_replacement_translated(client: OpenAI, upstream: FakeOpenAI) -> None:
    reply = client.responses.create(model="gpt", input="replace me")
    assert upstream.requests[-1].path == "/v1/responses"  # it went through as it is
    assert reply.output_text == "replaced" and reply.id != RESPONSE_ID  # the gateway's Response of the new chat


def test_output_moderation_reads_the_chat_and_keeps_the_pass_through_but_not_for_streams(
        upstream: FakeOpenAI, folder: Path) -> None:
    config = {"model_list": [deployment(upstream)],
              "litellm_settings": {"callbacks": ["azure_content_safety"],
                                   "azure_content_safety_params": {"endpoint": None, "key": "cs-e2e-key"}}}
    with ContentSafetyStandIn(key="cs-e2e-key") as cs:
        config["litellm_settings"]["azure_content_safety_params"]["endpoint"] = cs.endpoint
        with running_gateway(config, data_dir=folder / "moderated") as gw, sdk_of(gw) as sdk:
            reply = sdk.responses.create(model="gpt", input="hello")
            assert upstream.requests[-1].path == "/v1/responses"
            with sdk.responses.stream(model="gpt", input="hello") as stream:
                streamed = stream.get_final_response()
        assert "fake responds: hello" in cs.texts
    assert reply.id == RESPONSE_ID
    # a stream filter reads and may hold or cut chat chunks: the stream keeps the translation
    assert streamed.output_text == "fake says: hello" and upstream.requests[-1].path == "/v1/chat/completions"


def _content(response_obj: Any) -> Any:
    choice = response_obj["choices"][0] if isinstance(response_obj, dict) else response_obj.choices[0]
    message = choice["message"] if isinstance(choice, dict) else choice.message
    return message["content"] if isinstance(message, dict) else message.content
