"""An upstream that echoes the deployment's key (whole, partly, inside ``Bearer``) leaks no part of it.

The real server on loopback, the official ``openai`` client, and the span the call wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.gateway import RunningGateway, running_gateway
from tests.support.upstream import Behaviour, FakeOpenAI

KEYS = {
    "azure-hex": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "slashed": "AbC+def/GhI~jkl=MnO.pqr_StU-vwx+YZ09",
    "no-prefix": "pk_live_51HxQwErTyUiOp",
    "dotted": "ya29.a0AfH6SMC-Xyz~tok=en",
}
HEADER_TOKEN = "gw-Tok/en+with~odd=chars"
PARTS = ("{key}", "Bearer {key}", "key ...{tail} rejected", "key {head}... rejected", "'{key}'")


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def gw(upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    models: list[dict[str, Any]] = [
        {"model_name": name, "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": upstream.api_base,
                                                "api_key": key}} for name, key in KEYS.items()]
    models.append({"model_name": "header", "litellm_params": {
        "model": "openai/gpt-4o-mini", "api_base": upstream.api_base, "api_key": KEYS["azure-hex"],
        "extra_headers": {"x-api-key": HEADER_TOKEN}}})
    config = {"model_list": models, "litellm_settings": {"success_callback": ["file"], "failure_callback": ["file"]}}
    with running_gateway(config, data_dir=tmp_path_factory.mktemp("secrets")) as running:
        yield running


def fragments(secret: str) -> list[str]:
    return [secret[i:i + 8] for i in range(len(secret) - 7)]


def call_failing(gw: RunningGateway, upstream: FakeOpenAI, model: str, message: str,
                 stream: bool) -> tuple[str, dict[str, Any]]:
    upstream.script(Behaviour(status=401, message=message))
    before = len(gw.spans())
    client = openai.OpenAI(base_url=gw.openai_base_url, api_key="x", max_retries=0, timeout=10)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], stream=stream)
    span = gw.wait_for_spans(before + 1)[before]
    return json.dumps(caught.value.body), span


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("template", PARTS)
@pytest.mark.parametrize("model", sorted(KEYS))
def test_no_fragment_of_the_key_reaches_client_or_span(gw: RunningGateway, upstream: FakeOpenAI, model: str,
                                                       template: str, stream: bool) -> None:
    key = KEYS[model]
    echoed = template.format(key=key, head=key[:10], tail=key[-9:])
    body, span = call_failing(gw, upstream, model, f"Incorrect API key provided: {echoed}.", stream)
    assert "Incorrect API key provided: " in body  # the message itself survives
    for seen in (body, json.dumps(span)):
        assert not [f for f in fragments(key) if f in seen], seen


def test_a_secret_extra_header_is_scrubbed_too(gw: RunningGateway, upstream: FakeOpenAI) -> None:
    body, span = call_failing(gw, upstream, "header", f"gateway token {HEADER_TOKEN} is not valid here", False)
    assert "gateway token *** is not valid here" in body
    for seen in (body, json.dumps(span)):
        assert not [f for f in fragments(HEADER_TOKEN) if f in seen], seen
