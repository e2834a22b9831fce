"""How requests to OpenAI-compatible upstreams look on the wire (azure/ and openai/), via MockTransport."""

from __future__ import annotations

import json

import httpx

from app import semconv as sc
from app.config import DeploymentConfig
from app.providers.openai_compat import OpenAICompatibleDeployment


def _capture() -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "x", "choices": []})

    return seen, httpx.MockTransport(handler)


async def test_azure_uses_deployment_path_api_version_and_api_key_header() -> None:
    seen, client = _capture()
    config = DeploymentConfig("gpt-4o", "azure", "my-deploy", "gpt-4o-0", api_base="https://res.openai.azure.com/",
                              api_key="azure-secret", api_version="2024-10-21")
    deployment = OpenAICompatibleDeployment(config, client)
    reply = await deployment.complete(sc.OP_CHAT, {"model": "gpt-4o", "messages": []})
    assert reply.status == 200
    [request] = seen
    assert str(request.url) == ("https://res.openai.azure.com/openai/deployments/my-deploy/chat/completions"
                                "?api-version=2024-10-21")
    assert request.headers["api-key"] == "azure-secret"
    assert "authorization" not in request.headers
    assert deployment.provider_name == sc.PROVIDER_AZURE
    assert (deployment.server_address, deployment.server_port) == ("res.openai.azure.com", 443)


async def test_openai_sends_bearer_key_and_the_upstream_model_name() -> None:
    seen, client = _capture()
    config = DeploymentConfig("fast", "openai", "gpt-4o-mini", "fast-0", api_base="http://127.0.0.1:9/v1",
                              api_key="sk-up", headers={"x-org": "acme"})
    deployment = OpenAICompatibleDeployment(config, client)
    await deployment.complete(sc.OP_EMBEDDINGS, {"model": "fast", "input": "hi"})
    [request] = seen
    assert str(request.url) == "http://127.0.0.1:9/v1/embeddings"
    assert request.headers["authorization"] == "Bearer sk-up"
    assert request.headers["x-org"] == "acme"
    assert json.loads(request.content) == {"model": "gpt-4o-mini", "input": "hi"}
    assert (deployment.server_address, deployment.server_port) == ("127.0.0.1", 9)
