"""An upstream that echoes the deployment's key (whole, partly, inside ``Bearer``) leaks no part of it.

The real server on loopback, the official ``openai`` client, and the span the call wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from app.calls.span import MAX_STATUS_CHARS
from app.providers.upstream_errors import MAX_MESSAGE_CHARS
from contracts import semconv as sc
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.upstream import Behaviour, FakeOpenAI

KEYS = {
    "azure-hex": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "slashed": "AbC+def/GhI~jkl=MnO.pqr_StU-vwx+YZ09",
    "no-prefix": "pk_live_51HxQwErTyUiOp",
    "dotted": "ya29.a0AfH6SMC-Xyz~tok=en",
}
HEADER_TOKEN = "gw-Tok/en+with~odd=chars"
SK_KEY = "sk-proj-Echo1234abcdEFGH5678ijkl"
URL_USER, URL_PASSWORD = "svc-gateway", "pw-In-The-Url-0042"
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
    models.append({"model_name": "echo", "litellm_params": {"model": "openai/gpt-4o-mini",
                                                            "api_base": upstream.api_base, "api_key": SK_KEY}})
    with_userinfo = upstream.api_base.replace("http://", f"http://{URL_USER}:{URL_PASSWORD}@")
    models.append({"model_name": "userinfo", "litellm_params": {"model": "openai/gpt-4o-mini",
                                                                "api_base": with_userinfo, "api_key": SK_KEY}})
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


# --- every field of the upstream's error object, not only its message (issue 20, item 1) ----------

def echoing_error(key: str, code: str | None = None) -> dict[str, Any]:
    """What a provider that echoes the key in every field sends back with its 401."""
    return {"message": f"Incorrect API key provided: {key}.", "type": f"invalid_key {key}",
            "code": code or f"code-{key}", "param": f"param-{key}"}


def scrape(gw: RunningGateway) -> str:
    response = httpx.get(gw.base_url + "/metrics", timeout=10)
    assert response.status_code == 200
    return response.text


def call_echo(gw: RunningGateway, upstream: FakeOpenAI, error: dict[str, Any],
              stream: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The error the client read (JSON body or stream error event) and the span of the call."""
    if stream:
        event = b"data: " + json.dumps({"error": error}).encode() + b"\n\n"
        upstream.script(Behaviour(events=(event,)))
    else:
        upstream.script(Behaviour(status=401, body=json.dumps({"error": error}).encode()))
    before = len(gw.spans())
    client = openai.OpenAI(base_url=gw.openai_base_url, api_key="x", max_retries=0, timeout=10)
    with pytest.raises(openai.APIError) as caught:
        answer = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}],
                                                stream=stream)
        list(answer)
    body = caught.value.body
    body = body.get("error", body) if isinstance(body, dict) else {}
    return body, gw.wait_for_spans(before + 1)[before]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_no_field_of_the_upstream_error_carries_the_key_to_client_span_or_metrics(
        gw: RunningGateway, upstream: FakeOpenAI, stream: bool) -> None:
    error, span = call_echo(gw, upstream, echoing_error(SK_KEY), stream)
    assert set(error) >= {"message", "type", "code", "param"}
    assert "Incorrect API key provided: " in error["message"]
    # Not plain words: the gateway's own type and code instead, and no param.
    assert (error["type"], error["param"]) == ("upstream_error", None)
    assert error["code"] == (None if stream else "upstream_http_401")
    for seen in (json.dumps(error), json.dumps(span), scrape(gw)):
        assert not [f for f in fragments(SK_KEY) if f in seen], seen
        assert "sk-proj" not in seen


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_plain_word_code_is_kept_for_client_and_span_but_a_metric_label_only_when_known(
        gw: RunningGateway, upstream: FakeOpenAI, stream: bool) -> None:
    known = {"message": "no", "type": "invalid_request_error", "code": "invalid_api_key", "param": "messages[0]"}
    error, span = call_echo(gw, upstream, known, stream)
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "invalid_api_key",
                                                              "messages[0]")
    assert span["attributes"][sc.ERROR_TYPE] == "invalid_api_key"
    assert 'error_type="invalid_api_key"' in scrape(gw)

    invented = f"made_up_{'stream' if stream else 'json'}_code"
    error, span = call_echo(gw, upstream, {**known, "code": invented}, stream)
    assert error["code"] == span["attributes"][sc.ERROR_TYPE] == invented
    metrics = scrape(gw)
    assert invented not in metrics  # an upstream inventing a code per call must not add a series per call
    assert f'error_type="upstream_http_{502 if stream else 401}"' in metrics


# --- a huge upstream error message (issue 20, item 5) ----------------------------------------------

def test_a_huge_error_message_is_cut_before_it_reaches_client_or_span(gw: RunningGateway,
                                                                      upstream: FakeOpenAI) -> None:
    huge = f"Incorrect API key provided: {SK_KEY}. " + "x" * (1 << 20)
    error, span = call_echo(gw, upstream, {"message": huge, "type": "invalid_request_error"}, False)
    assert error["message"].startswith("upstream error from echo (127.0.0.1): Incorrect API key provided: ***. xxx")
    assert len(error["message"]) <= MAX_MESSAGE_CHARS + 100
    assert len(span["status"]["description"]) <= MAX_STATUS_CHARS + 3
    assert SK_KEY not in json.dumps(span)


# --- credentials in the api_base URL (issue 20, item 12) ------------------------------------------

def test_the_raw_request_masks_the_user_and_password_of_the_api_base(gw: RunningGateway) -> None:
    before = len(gw.spans())
    client = openai.OpenAI(base_url=gw.openai_base_url, api_key="x", max_retries=0, timeout=10)
    client.chat.completions.create(model="userinfo", messages=[{"role": "user", "content": "hi"}],
                                   extra_body={"metadata": {"log_raw_request": True}})
    span = gw.wait_for_spans(before + 1)[before]
    raw = span["attributes"][sc.metadata_key("raw_request")]
    assert raw.startswith("curl -X POST 'http://***@127.0.0.1:")
    assert URL_PASSWORD not in json.dumps(span) and URL_USER not in json.dumps(span)


def test_an_upstream_error_echoing_the_url_password_is_scrubbed(gw: RunningGateway, upstream: FakeOpenAI) -> None:
    body, span = call_failing(gw, upstream, "userinfo", f"basic auth {URL_USER}:{URL_PASSWORD} refused", False)
    assert "basic auth ***:*** refused" in body
    assert URL_PASSWORD not in body + json.dumps(span)
