"""Vertex AI (``app.providers.vertex``): Vertex's URL scheme and an OAuth token from google-auth's own
service-account flow, against the loopback fake's token endpoint (which verifies the JWT's signature)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from google.oauth2 import service_account

from app.config.settings import DeploymentConfig, parse_config
from app.errors import InvalidRequest, UpstreamUnavailable
from app.providers.native import Resources
from app.providers.registry import build_deployment
from app.providers.vertex import SCOPES, TokenSource, token_session
from contracts import semconv as sc
from tests.support.fake_gemini import FakeGemini


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as running:
        yield running


@pytest.fixture
async def resources() -> AsyncIterator[Resources]:
    transport = httpx.AsyncHTTPTransport()
    yield Resources(transport)
    await transport.aclose()


def _config(fake: FakeGemini, **params: object) -> DeploymentConfig:
    litellm = {"model": "vertex_ai/gemini-2.5-flash", "vertex_project": "proj-v", "vertex_location": "europe-west4",
               "vertex_credentials": json.dumps(fake.service_account("proj-v")), "api_base": fake.url, **params}
    return parse_config({"model_list": [{"model_name": "v", "litellm_params": litellm}]}, environ={}).deployments[0]


def _tokens(fake: FakeGemini) -> TokenSource:
    return TokenSource(service_account.Credentials.from_service_account_info(fake.service_account(),
                                                                             scopes=list(SCOPES)))


async def test_a_call_goes_to_vertexs_path_with_a_token_from_the_service_accounts_flow(
        fake: FakeGemini, resources: Resources) -> None:
    deployment = build_deployment(_config(fake), resources)
    reply = await deployment.complete("chat", {"messages": [{"role": "user", "content": "hi"}]})
    assert reply.status == 200 and json.loads(reply.body)["choices"][0]["message"]["content"] == "fake gemini says: hi"
    [sent] = fake.requests
    assert sent.path == ("/v1/projects/proj-v/locations/europe-west4/publishers/google/models/"
                         "gemini-2.5-flash:generateContent")
    assert sent.headers["authorization"] == "Bearer ya29.fake-token-1"
    assert (deployment.provider_name, deployment.server_address) == (sc.PROVIDER_GCP_VERTEX_AI, "127.0.0.1")


async def test_concurrent_calls_share_one_token_refresh(fake: FakeGemini) -> None:
    tokens = _tokens(fake)
    await asyncio.gather(*(tokens.ensure() for _ in range(8)))
    await tokens.ensure()
    assert fake.token_requests == 1 and tokens.token == "ya29.fake-token-1"


async def test_a_token_about_to_expire_is_refreshed_before_it_is_used(fake: FakeGemini) -> None:
    fake.token_lifetime = 60  # inside google-auth's refresh margin (3 min 45 s): never valid enough to reuse
    tokens = _tokens(fake)
    await tokens.ensure()
    await tokens.ensure()
    assert fake.token_requests == 2 and tokens.token == "ya29.fake-token-2"


async def test_a_refused_token_is_a_502_that_names_the_deployment_and_no_credential(
        fake: FakeGemini, resources: Resources) -> None:
    with FakeGemini() as other:
        stranger = other.service_account("proj-v")  # signed with a key the fake's token endpoint does not know
    config = _config(fake, vertex_credentials=json.dumps({**stranger, "token_uri": f"{fake.url}/token"}))
    deployment = build_deployment(config, resources)
    with pytest.raises(UpstreamUnavailable) as caught:
        await deployment.complete("chat", {"messages": [{"role": "user", "content": "hi"}]})
    assert "access token" in caught.value.message and "'v'" in caught.value.message
    assert stranger["private_key"][40:80] not in caught.value.message and fake.requests == []


async def test_vertex_serves_chat_and_refuses_embeddings_before_sending(fake: FakeGemini, resources: Resources) -> None:
    deployment = build_deployment(_config(fake), resources)
    with pytest.raises(InvalidRequest) as caught:
        await deployment.complete("embeddings", {"input": "x"})
    assert caught.value.code == "unsupported_operation" and fake.requests == []


@pytest.mark.parametrize(("upstream_proxy", "trust_env", "proxies"), [
    (None, True, {}), ("direct", False, {}),
    ("http://egress:3128", False, {"http": "http://egress:3128", "https": "http://egress:3128"})])
def test_the_token_exchange_takes_the_gateways_proxy_setting(upstream_proxy: str | None, trust_env: bool,
                                                             proxies: dict[str, str]) -> None:
    session = token_session(upstream_proxy)
    assert (session.trust_env, session.proxies) == (trust_env, proxies)
