"""What LiteLLM users lean on, through the official ``openai`` client and the real server: the
``x-litellm-api-key`` header, and a response id of its own for every call (mocks included)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from contracts import semconv as sc
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.teams import MASTER_KEY, admin_client, loopback_client, mock_models, openai_client

LITELLM_HEADER = "x-litellm-api-key"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    config = {"model_list": mock_models("mock-gpt"), "general_settings": {"master_key": MASTER_KEY},
              "litellm_settings": {"callbacks": ["file"]}}
    with running_gateway(config, data_dir=tmp_path_factory.mktemp("litellm-habits")) as running:
        yield running


@pytest.mark.parametrize("value", [MASTER_KEY, f"Bearer {MASTER_KEY}"], ids=["bare", "bearer"])
def test_the_litellm_key_header_authenticates_llm_calls_over_another_authorization(
        gw: RunningGateway, value: str) -> None:
    # Clients send it when Authorization carries something else (a provider key for a passthrough)
    with openai_client(gw.base_url, "sk-not-a-gateway-key") as base:
        client = base.with_options(default_headers={LITELLM_HEADER: value})
        reply = client.chat.completions.create(model="mock-gpt", messages=[{"role": "user", "content": "hi"}])
        models = [m.id for m in client.models.list()]
    assert reply.choices[0].message.content == "This is a mock response from mock-gpt. You said: hi"
    assert models == ["mock-gpt"]


def test_the_litellm_key_header_opens_the_admin_api(gw: RunningGateway) -> None:
    with admin_client(gw.base_url, key=None) as client:
        refused = client.get("/team/list")
        allowed = client.get("/team/list", headers={LITELLM_HEADER: MASTER_KEY})
    assert (refused.status_code, allowed.status_code) == (401, 200)


def test_a_wrong_litellm_key_header_is_refused_whatever_authorization_says(gw: RunningGateway) -> None:
    with loopback_client() as client:
        response = client.post(f"{gw.base_url}/v1/chat/completions",
                               headers={LITELLM_HEADER: "sk-wrong", "Authorization": f"Bearer {MASTER_KEY}"},
                               json={"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 401


def test_every_call_has_its_own_response_id_even_for_the_same_prompt(gw: RunningGateway) -> None:
    tag = "same prompt, twice, then streamed"
    with openai_client(gw.base_url, MASTER_KEY) as client:
        replies = [client.chat.completions.create(model="mock-gpt", messages=[{"role": "user", "content": tag}])
                   for _ in range(2)]
        streamed = list(client.chat.completions.create(model="mock-gpt", stream=True,
                                                       messages=[{"role": "user", "content": tag}]))
    spans = gw.wait_for_spans(3, where=lambda s: tag in str(s["attributes"].get(sc.INPUT_MESSAGES)))
    ids = {replies[0].id, replies[1].id, streamed[0].id}
    assert len(ids) == 3
    assert {s["attributes"][sc.RESPONSE_ID] for s in spans} == ids
