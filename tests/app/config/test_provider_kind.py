"""A deployment's kind: the one place the gateway tells mock and Azure deployments from OpenAI-wire ones."""

from __future__ import annotations

import pytest

from app.config.provider_kind import ProviderKind
from app.config.settings import DeploymentConfig


@pytest.mark.parametrize(("provider", "kind"), [
    ("mock", ProviderKind.MOCK), ("azure", ProviderKind.AZURE), ("openai", ProviderKind.OPENAI),
    ("text-completion-openai", ProviderKind.OPENAI), ("groq", ProviderKind.OPENAI),
    ("hosted_vllm", ProviderKind.OPENAI),
])
def test_a_deployment_kind_follows_its_provider_prefix(provider: str, kind: ProviderKind) -> None:
    assert DeploymentConfig("m", provider, "up", "m-0").kind is kind
