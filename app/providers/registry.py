"""Provider kinds -> the deployment that serves them: one line per provider.

Native providers are imported when a deployment of theirs is built, not before: a gateway that
names no Bedrock model never loads botocore's signer, nor google-auth without a Vertex AI one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from app.config.provider_kind import ProviderKind
from app.config.settings import DeploymentConfig
from app.providers.base import Deployment
from app.providers.mock import MockDeployment
from app.providers.native import Resources
from app.providers.openai_compat import OpenAICompatibleDeployment

Builder = Callable[[DeploymentConfig, Resources], Deployment]


def _openai(config: DeploymentConfig, r: Resources) -> Deployment:
    return OpenAICompatibleDeployment(config, r.transport, inject_traceparent=r.inject_traceparent,
                                      max_response_bytes=r.max_response_bytes, pool_wait=r.pool_wait)


BUILDERS: dict[ProviderKind, Builder | str] = {
    ProviderKind.MOCK: lambda config, _r: MockDeployment(config),
    ProviderKind.OPENAI: _openai,
    ProviderKind.AZURE: _openai,
    ProviderKind.ANTHROPIC: "app.providers.anthropic:build",
    ProviderKind.GEMINI: "app.providers.gemini:build",
    ProviderKind.VERTEX_AI: "app.providers.vertex:build",
    ProviderKind.BEDROCK: "app.providers.bedrock:build",
}


def build_deployment(config: DeploymentConfig, resources: Resources) -> Deployment:
    return _builder(config.kind)(config, resources)


def _builder(kind: ProviderKind) -> Builder:
    found = BUILDERS[kind]
    if isinstance(found, str):
        module, _, name = found.partition(":")
        found = BUILDERS[kind] = getattr(importlib.import_module(module), name)
    return found
