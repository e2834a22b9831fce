"""Model groups: round-robin start, fail over on connect errors, 429 and 5xx, never on 4xx or timeouts."""

from dataclasses import dataclass, field
from typing import Any

import pytest

from app.config.settings import DeploymentConfig
from app.errors import UpstreamTimeout, UpstreamUnavailable
from app.providers.groups import ModelGroup, ModelRouter
from app.providers.mock import MockDeployment
from app.providers.openai_compat import OpenAICompatibleDeployment


@dataclass
class Answer:
    status: int
    closed: bool = False

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class FakeDeployment:
    name: str
    outcome: Any  # an int status, or an exception to raise
    calls: list[str] = field(default_factory=list)

    @property
    def config(self) -> DeploymentConfig:
        return DeploymentConfig("group", "openai", "m", self.name)


def group_of(*deployments: FakeDeployment) -> tuple[ModelGroup, list[str]]:
    calls: list[str] = []
    for d in deployments:
        d.calls = calls
    return ModelGroup("group", list(deployments)), calls


async def attempt(deployment: Any) -> Answer:
    deployment.calls.append(deployment.name)
    if isinstance(deployment.outcome, Exception):
        raise deployment.outcome
    return Answer(deployment.outcome)


async def call(group: ModelGroup) -> tuple[Any, Answer]:
    return await group.call(attempt, lambda a: a.status)


def test_each_call_starts_at_the_next_deployment() -> None:
    group, _ = group_of(FakeDeployment("a", 200), FakeDeployment("b", 200), FakeDeployment("c", 200))
    starts = [group.order()[0].name for _ in range(4)]
    assert starts == ["a", "b", "c", "a"]
    assert [d.name for d in group.order()] == ["b", "c", "a"]


@pytest.mark.parametrize("failure", [500, 503, 429, UpstreamUnavailable("refused")])
async def test_fails_over_to_the_next_deployment(failure: Any) -> None:
    group, calls = group_of(FakeDeployment("a", failure), FakeDeployment("b", 200))
    deployment, answer = await call(group)
    assert (deployment.name, answer.status, calls) == ("b", 200, ["a", "b"])


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_client_errors_are_answered_without_failover(status: int) -> None:
    group, calls = group_of(FakeDeployment("a", status), FakeDeployment("b", 200))
    deployment, answer = await call(group)
    assert (deployment.name, answer.status, calls) == ("a", status, ["a"])


async def test_a_timeout_is_not_retried_elsewhere() -> None:
    group, calls = group_of(FakeDeployment("a", UpstreamTimeout("slow")), FakeDeployment("b", 200))
    with pytest.raises(UpstreamTimeout):
        await call(group)
    assert calls == ["a"]


async def test_the_last_deployments_answer_or_error_is_what_the_client_gets() -> None:
    group, calls = group_of(FakeDeployment("a", 500), FakeDeployment("b", 429))
    deployment, answer = await call(group)
    assert (deployment.name, answer.status, calls) == ("b", 429, ["a", "b"])
    group, _ = group_of(FakeDeployment("a", 500), FakeDeployment("b", UpstreamUnavailable("refused")))
    with pytest.raises(UpstreamUnavailable):
        await call(group)


async def test_an_abandoned_answer_is_closed_so_its_connection_is_released() -> None:
    answers: list[Answer] = []

    async def keeping(deployment: Any) -> Answer:
        answers.append(await attempt(deployment))
        return answers[-1]

    group, _ = group_of(FakeDeployment("a", 502), FakeDeployment("b", 200))
    await group.call(keeping, lambda a: a.status)
    assert [a.closed for a in answers] == [True, False]


async def test_router_builds_mock_and_http_deployments_grouped_by_model_name() -> None:
    configs = [DeploymentConfig("gpt", "openai", "gpt-4o", "gpt-0", api_base="http://10.0.0.1:8000/v1/"),
               DeploymentConfig("gpt", "azure", "dep", "gpt-1", api_base="https://x.openai.azure.com"),
               DeploymentConfig("mock", "mock", "m", "mock-0")]
    router = ModelRouter.build(configs, transport=None)  # type: ignore[arg-type]  # never used: nothing is sent
    assert router.names == ["gpt", "mock"]
    first, second = router.get("gpt").deployments  # type: ignore[union-attr]
    assert isinstance(first, OpenAICompatibleDeployment)
    assert (first.provider_name, first.server_address, first.server_port) == ("openai", "10.0.0.1", 8000)
    assert (second.provider_name, second.server_address, second.server_port) == ("azure.ai.openai",
                                                                                  "x.openai.azure.com", 443)
    assert isinstance(router.get("mock").deployments[0], MockDeployment)  # type: ignore[union-attr]
    assert router.get("nope") is None
