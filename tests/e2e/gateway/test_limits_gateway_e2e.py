"""Budgets and limits on one gateway with the embedded SQLite store (the memory backend), through the
official clients: the refusals as LiteLLM's scripts read them, one spend log row per call, streams and
the Anthropic dialect counted like chat, and keys with no limits untouched by admission."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.support.gateway import RunningGateway, running_gateway
from tests.support.teams import MASTER_KEY, admin_client, ok, poll

MODEL = "priced-gpt"
PRICES = {"input_cost_per_token": 0.0000013, "output_cost_per_token": 0.0000029}


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[RunningGateway]:
    config = {"model_list": [{"model_name": MODEL, "litellm_params": {"model": f"mock/{MODEL}"},
                              "model_info": PRICES}],
              "general_settings": {"master_key": MASTER_KEY,
                                   "database_url": f"sqlite:///{(tmp_path / 'store.db').resolve()}"},
              "litellm_settings": {"callbacks": ["file"]}}
    with running_gateway(config, data_dir=tmp_path / "data") as running:
        yield running


def client(gateway: RunningGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=key, max_retries=0)


def generate(gateway: RunningGateway, **body: Any) -> str:
    with admin_client(gateway.base_url) as admin:
        return ok(admin.post("/key/generate", json=body))["key"]


def logs(gateway: RunningGateway, **params: Any) -> list[dict[str, Any]]:
    with admin_client(gateway.base_url) as admin:
        return ok(admin.get("/spend/logs", params=params))


def ask(gateway: RunningGateway, key: str, **kwargs: Any) -> Any:
    with client(gateway, key) as sdk:
        answer = sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], **kwargs)
        return list(answer) if kwargs.get("stream") else answer


def test_a_spent_budget_is_refused_as_litellm_types_it_and_the_upstream_is_not_called(
        gateway: RunningGateway) -> None:
    probe = generate(gateway)
    ask(gateway, probe)
    poll(lambda: len(logs(gateway, api_key=probe)) == 1, timeout=5)
    cost = logs(gateway, api_key=probe)[0]["spend"]
    key = generate(gateway, max_budget=cost * 2, key_alias="two-calls")
    ask(gateway, key)
    ask(gateway, key)
    with pytest.raises(openai.RateLimitError) as refused:
        ask(gateway, key)
    error = refused.value.body
    assert error["type"] == "budget_exceeded" and error["code"] == "budget_exceeded"
    assert "two-calls" in error["message"] and key not in error["message"]
    poll(lambda: len(logs(gateway, api_key=key)) == 2, timeout=5)  # the refused call reached no upstream
    assert all(row["status"] == "success" for row in logs(gateway, api_key=key))
    with admin_client(gateway.base_url) as admin:
        metrics = admin.get("/metrics").text
    refusals = [line for line in metrics.splitlines() if line.startswith("spangate_limits_refusals_total{")]
    assert any('key="two-calls"' in line and 'reason="budget"' in line for line in refusals), refusals
    assert any(line.startswith("spangate_limits_spend") and 'key="two-calls"' in line
               for line in metrics.splitlines()), metrics


def test_every_keyed_call_gets_one_spend_row_streams_and_failures_included(gateway: RunningGateway) -> None:
    key = generate(gateway)
    ask(gateway, key)
    assert ask(gateway, key, stream=True)
    with pytest.raises(openai.NotFoundError), client(gateway, key) as sdk:
        sdk.chat.completions.create(model="no-such", messages=[{"role": "user", "content": "x"}])
    poll(lambda: len(logs(gateway, api_key=key)) == 2, timeout=5)
    rows = logs(gateway, api_key=key)
    assert {row["status"] for row in rows} == {"success"}
    assert all(row["spend"] > 0 and row["total_tokens"] > 0 and row["model"] == MODEL for row in rows)
    assert len({row["request_id"] for row in rows}) == 2
    with admin_client(gateway.base_url) as admin:
        info = ok(admin.post("/key/info", json={"key": key}))["info"]
    assert info["spend"] == pytest.approx(sum(row["spend"] for row in rows), abs=1e-12)  # one flush wrote both


def test_the_anthropic_dialect_counts_against_the_same_limits(gateway: RunningGateway) -> None:
    key = generate(gateway, rpm_limit=2)
    messages = anthropic.Anthropic(base_url=gateway.base_url, api_key=key, max_retries=0)
    for _ in range(2):
        messages.messages.create(model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.RateLimitError) as refused:
        messages.messages.create(model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.response.headers.get("retry-after")
    messages.close()
    with pytest.raises(openai.RateLimitError):
        ask(gateway, key)


def test_a_team_budget_binds_every_key_of_the_team(gateway: RunningGateway) -> None:
    probe = generate(gateway)
    ask(gateway, probe)
    poll(lambda: len(logs(gateway, api_key=probe)) == 1, timeout=5)
    cost = logs(gateway, api_key=probe)[0]["spend"]
    with admin_client(gateway.base_url) as admin:
        team = ok(admin.post("/team/new", json={"max_budget": cost * 3}))["team_id"]
    first, second = generate(gateway, team_id=team), generate(gateway, team_id=team)
    ask(gateway, first)
    ask(gateway, second)
    ask(gateway, first)
    with pytest.raises(openai.RateLimitError) as refused:
        ask(gateway, second)
    assert refused.value.body["type"] == "budget_exceeded" and "Team=" in refused.value.body["message"]

    def team_spend() -> float:
        with admin_client(gateway.base_url) as admin:
            return ok(admin.get("/team/info", params={"team_id": team}))["team_info"]["spend"]

    # The store's figure follows the ledger's flush (a tenth of a second); the limiter's own was exact.
    poll(lambda: team_spend() == pytest.approx(cost * 3, abs=1e-12), timeout=5)
