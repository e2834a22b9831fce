"""What a caller may learn and do with models: lists show only what it may use; mock_response only
where the operator allows it. The real server on loopback, the official ``openai`` client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from contracts import semconv as sc
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.teams import MASTER_KEY, admin_client, database, gateway_settings, mock_models, openai_client
from tests.support.upstream import FakeOpenAI

MODELS = ("alpha", "beta", "gamma")


def real_model(name: str, upstream: FakeOpenAI) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": upstream.api_base,
                                                   "api_key": "sk-upstream-0123456789"}}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def gw(upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with database("sqlite", tmp_path_factory.mktemp("store")) as db:
        config = gateway_settings(db, callbacks=["file"])
        config["model_list"] = [*mock_models(*MODELS), real_model("real", upstream)]
        with running_gateway(config, data_dir=tmp_path_factory.mktemp("gw")) as running:
            yield running


@pytest.fixture(scope="module")
def admin(gw: RunningGateway) -> Iterator[httpx.Client]:
    with admin_client(gw.base_url) as client:
        yield client


def key_for(admin: httpx.Client, key_models: list[str], team_models: list[str] | None) -> str:
    body: dict[str, Any] = {"models": key_models}
    if team_models is not None:
        body["team_id"] = admin.post("/team/new", json={"models": team_models}).json()["team_id"]
    return admin.post("/key/generate", json=body).json()["key"]


@pytest.mark.parametrize(("key_models", "team_models", "visible"), [
    (["alpha"], None, ["alpha"]),
    (["alpha", "beta"], ["beta", "gamma"], ["beta"]),
    ([], ["gamma"], ["gamma"]),
    (["all-proxy-models"], ["alpha", "real"], ["alpha", "real"]),
    (["alpha", "no-such-model"], ["all-proxy-models"], ["alpha"]),
    ([], [], [*MODELS, "real"]),
    (["alpha"], ["beta"], []),
])
def test_model_list_and_404_show_only_what_the_caller_may_use(
        gw: RunningGateway, admin: httpx.Client, key_models: list[str], team_models: list[str] | None,
        visible: list[str]) -> None:
    with openai_client(gw.base_url, key_for(admin, key_models, team_models)) as client:
        assert [m.id for m in client.models.list()] == visible
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model="delta", messages=[{"role": "user", "content": "hi"}])
    listed = caught.value.message.split("available: ")[1].rstrip("'}\"")
    assert listed == (", ".join(visible) or "none for this key"), caught.value.message


def chat_with_mock(gw: RunningGateway, model: str) -> tuple[Any, dict[str, Any]]:
    """The answer (or the 400) and the span of the one call this module makes to ``model`` with mock_response."""
    with openai_client(gw.base_url, MASTER_KEY) as client:
        try:
            answer: Any = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                                         extra_body={"mock_response": "free tokens"})
        except openai.BadRequestError as exc:
            answer = exc
    [span] = gw.wait_for_spans(1, where=lambda s: s["name"] == f"chat {model}")
    return answer, span


def test_mock_response_on_a_real_model_is_a_400_naming_the_field(gw: RunningGateway, upstream: FakeOpenAI) -> None:
    sent = len(upstream.requests)
    error, span = chat_with_mock(gw, "real")
    assert isinstance(error, openai.BadRequestError)
    assert error.body["param"] == "mock_response" and error.body["code"] == "mock_response_not_allowed"
    assert "spangate_settings.allow_mock_response" in error.body["message"]
    assert (span["status"]["code"], span["attributes"][sc.ERROR_TYPE]) == ("ERROR", "mock_response_not_allowed")
    assert sc.USAGE_COST not in span["attributes"]
    assert len(upstream.requests) == sent
    answer, span = chat_with_mock(gw, "alpha")  # a mock model still honours it
    assert answer.choices[0].message.content == "free tokens"
    assert span["status"]["code"] == "OK"


def test_the_operator_may_allow_mock_response_on_real_models(upstream: FakeOpenAI, tmp_path: Path) -> None:
    config = {"model_list": [real_model("real", upstream)], "litellm_settings": {"callbacks": ["file"]},
              "general_settings": {"master_key": MASTER_KEY},
              "spangate_settings": {"allow_mock_response": True}}
    sent = len(upstream.requests)
    with running_gateway(config, data_dir=tmp_path) as gw:
        assert gw.config.warnings == ()  # a known, typed setting
        answer, span = chat_with_mock(gw, "real")
    assert answer.choices[0].message.content == "free tokens", json.dumps(span)
    assert len(upstream.requests) == sent
