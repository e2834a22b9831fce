"""OpenAI-compatible hosts by name, end to end: the real gateway, the ``openai`` client, loopback fakes.

Each deployment finds its host and key the way a LiteLLM config expects (its key variable, its base
variable or an ``api_base``), and each fake sees only its own key. Then, across providers: with an
egress proxy that refuses everything, each deployment that names no ``api_base`` is attempted toward
exactly its documented default host and nothing else, and no key reaches the proxy.
"""

from __future__ import annotations

import json
import logging
import socketserver
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from app.calls.pricing import PriceBook
from contracts import semconv as sc
from tests.support.fake_gemini import FakeGemini
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.upstream import RESPONSE_MODEL_SUFFIX, USAGE, Behaviour, FakeOpenAI

HI = [{"role": "user", "content": "hi"}]
TAG = sc.metadata_key("test")
KEYS_TAG = {"metadata": {"test": "keys"}}


@dataclass(frozen=True)
class HostCase:
    model: str  # litellm_params.model
    provider_name: str  # gen_ai.provider.name its spans carry
    key_var: str | None = None  # where its key comes from (None: it is called with no key)
    base_var: str | None = None  # the base variable pointed at its fake; else api_base is
    base_without_v1: bool = False  # api_base written as LiteLLM's docs write it, the gateway adds /v1
    sent_model: str | None = None  # the model id its host receives, when not the one after the prefix
    priced: bool = True

    @property
    def name(self) -> str:
        return self.model.partition("/")[0]

    @property
    def key(self) -> str | None:
        return None if self.key_var is None else f"key-of-{self.name}-0123456789abcdef"

    @property
    def upstream_model(self) -> str:
        return self.sent_model or self.model.partition("/")[2]


HOSTS = [
    HostCase("groq/llama-3.3-70b-versatile", "groq", "GROQ_API_KEY", base_var="GROQ_API_BASE"),
    HostCase("mistral/mistral-large-latest", "mistral_ai", "MISTRAL_API_KEY", base_without_v1=True),
    HostCase("fireworks_ai/llama-v3p1-8b-instruct", "fireworks_ai", "FIREWORKS_AI_API_KEY",
             sent_model="accounts/fireworks/models/llama-v3p1-8b-instruct"),
    HostCase("xai/grok-3", "x_ai", "XAI_API_KEY", base_var="XAI_API_BASE"),
    HostCase("perplexity/sonar", "perplexity", "PERPLEXITYAI_API_KEY"),
    HostCase("openai/gpt-4o-mini", "openai", "OPENAI_API_KEY", base_var="OPENAI_BASE_URL"),
    HostCase("ollama_chat/llama3", "ollama", base_without_v1=True, priced=False),
]


def host_entry(case: HostCase, fake: FakeOpenAI, env: dict[str, str]) -> dict[str, Any]:
    params: dict[str, Any] = {"model": case.model}
    if case.key_var:
        env[case.key_var] = str(case.key)
    if case.base_var:
        env[case.base_var] = fake.api_base
    else:
        params["api_base"] = fake.url if case.base_without_v1 else fake.api_base
    return {"model_name": case.name, "litellm_params": params}


@dataclass
class Hosts:
    gw: RunningGateway
    fakes: dict[str, FakeOpenAI]


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    with ExitStack() as stack:
        fakes = {case.name: stack.enter_context(FakeOpenAI()) for case in HOSTS}
        env: dict[str, str] = {}
        models = [host_entry(case, fakes[case.name], env) for case in HOSTS]
        config = {"model_list": models, "litellm_settings": {"callbacks": ["file"]}}
        gw = stack.enter_context(running_gateway(config, env=env, data_dir=tmp_path_factory.mktemp("hosts")))
        yield Hosts(gw, fakes)


def client_of(gw: RunningGateway) -> OpenAI:
    return OpenAI(base_url=gw.openai_base_url, api_key="client-key", max_retries=0, timeout=10)


@pytest.mark.parametrize("case", HOSTS, ids=lambda c: c.name)
def test_each_host_answers_plain_and_streamed_with_usage_from_its_own_fake(hosts: Hosts, case: HostCase) -> None:
    with client_of(hosts.gw) as client:
        answer = client.chat.completions.create(model=case.name, messages=HI)
        chunks = list(client.chat.completions.create(model=case.name, messages=HI, stream=True,
                                                     stream_options={"include_usage": True}))
    assert answer.choices[0].message.content == "fake says: hi"
    assert answer.usage is not None and answer.usage.prompt_tokens == USAGE["prompt_tokens"]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "fake says: hi"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == USAGE["completion_tokens"]
    seen = hosts.fakes[case.name].wait_for_requests(2)[-2:]
    assert [(r.path, r.body["model"]) for r in seen] == [("/v1/chat/completions", case.upstream_model)] * 2
    assert {r.headers.get("authorization") for r in seen} == {None if case.key is None else f"Bearer {case.key}"}


def test_each_fake_sees_only_its_own_key_and_no_credential_reaches_clients_spans_or_logs(
        hosts: Hosts, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with client_of(hosts.gw) as client:
        texts = [client.chat.completions.with_raw_response.create(model=c.name, messages=HI, extra_body=KEYS_TAG).text
                 for c in HOSTS]
    keys = {case.name: case.key for case in HOSTS if case.key}
    for name, fake in hosts.fakes.items():
        wire = json.dumps([(r.headers, r.body) for r in fake.wait_for_requests(1)])
        assert [other for other, key in keys.items() if key in wire] == ([name] if name in keys else [])
    hosts.gw.wait_for_spans(len(HOSTS), where=lambda s: s["attributes"].get(TAG) == "keys")
    span_log = hosts.gw.span_log_path.read_text()
    seen_outside = "\n".join([*texts, span_log, caplog.text])
    assert [name for name, key in keys.items() if key in seen_outside] == []


def test_each_hosts_span_names_its_provider_model_usage_and_price(hosts: Hosts) -> None:
    with client_of(hosts.gw) as client:
        for case in HOSTS:
            client.chat.completions.create(model=case.name, messages=HI, extra_body={"metadata": {"test": "span"}})
    tagged = hosts.gw.wait_for_spans(len(HOSTS), where=lambda s: s["attributes"].get(TAG) == "span")
    spans = {s["attributes"][sc.PROVIDER_NAME]: s["attributes"] for s in tagged}
    assert sorted(spans) == sorted(case.provider_name for case in HOSTS)
    for case in HOSTS:
        attrs = spans[case.provider_name]
        assert attrs[sc.RESPONSE_MODEL] == case.upstream_model + RESPONSE_MODEL_SUFFIX
        assert attrs[sc.RESPONSE_FINISH_REASONS] == ["stop"]
        assert (attrs[sc.USAGE_INPUT_TOKENS], attrs[sc.USAGE_OUTPUT_TOKENS]) == (11, 7)
        expected = PriceBook().cost(case.name, case.upstream_model, {}, 11, 7, 2)
        assert (expected is not None) is case.priced, case.name
        assert attrs.get(sc.USAGE_COST) == pytest.approx(expected), case.name


@pytest.mark.parametrize("status", [429, 400])
def test_a_hosts_error_reaches_the_client_as_openai_error_json_with_its_status_and_its_key_scrubbed(
        hosts: Hosts, status: int) -> None:
    groq = next(case for case in HOSTS if case.name == "groq")
    hosts.fakes["groq"].script(Behaviour(status=status, message=f"bad key {groq.key} for this org"))
    with client_of(hosts.gw) as client, pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="groq", messages=HI)
    assert failed.value.status_code == status
    assert str(groq.key) not in f"{failed.value.message} {failed.value.body}"
    assert isinstance(failed.value.body, dict)
    assert failed.value.body["message"] == "upstream error from groq (127.0.0.1): bad key *** for this org"


# --- egress: each default host, and only it ---------------------------------------------------------


@dataclass(frozen=True)
class Egress:
    """One deployment with no api_base, and the only place its calls may go: ``host:port`` for an
    https host (a CONNECT tunnel, which carries no key), the absolute URL for a plain-http local one."""

    model: str
    target: str
    env: dict[str, str] = field(default_factory=dict)  # its key variable, and any setting it needs
    params: dict[str, Any] = field(default_factory=dict)  # litellm_params beyond model (a region...)
    oauth: bool = False  # Vertex AI: a service account whose token_uri is TOKEN_URI, fetched first

    @property
    def targets(self) -> list[str]:
        return sorted([self.target, TOKEN_URI] if self.oauth else [self.target])


# Plain http, so the proxy reads the token exchange in absolute form and answers it itself: the
# model call after it shows where the token is sent (the Vertex host, and only it).
TOKEN_URI = "http://oauth2.token.test/token"
PROXY_TOKEN = "ya29.token-the-proxy-handed-out-0123456789"
VERTEX = {"vertex_project": "proj-egress", "vertex_location": "us-east5"}

EGRESS = [
    Egress("anthropic/claude-haiku-4-5", "api.anthropic.com:443",
           {"ANTHROPIC_API_KEY": "sk-ant-api03-egress-0123456789abcdef"}),
    Egress("gemini/gemini-2.5-flash", "generativelanguage.googleapis.com:443",
           {"GEMINI_API_KEY": "AIza-egress-gemini-0123456789abcdef"}),
    Egress("vertex_ai/gemini-2.5-flash", "us-east5-aiplatform.googleapis.com:443", params=VERTEX, oauth=True),
    Egress("vertex_ai/claude-haiku-4-5@20251001", "us-east5-aiplatform.googleapis.com:443", params=VERTEX,
           oauth=True),
    Egress("bedrock/anthropic.claude-3-haiku-20240307-v1:0", "bedrock-runtime.eu-west-3.amazonaws.com:443",
           {"BEDROCK_KEY_ID": "AKIAEGRESS0123456789", "BEDROCK_SECRET": "egress-aws-secret-0123456789abcdef"},
           {"aws_region_name": "eu-west-3", "aws_access_key_id": "os.environ/BEDROCK_KEY_ID",
            "aws_secret_access_key": "os.environ/BEDROCK_SECRET"}),
    Egress("openai/gpt-4o-mini", "api.openai.com:443", {"OPENAI_API_KEY": "sk-openai-0123456789abcdef"}),
    Egress("gpt-4o-mini", "api.openai.com:443", {"OPENAI_API_KEY": "sk-openai-0123456789abcdef"}),
    Egress("groq/llama-3.3-70b-versatile", "api.groq.com:443", {"GROQ_API_KEY": "gsk-groq-0123456789abcdef"}),
    Egress("mistral/mistral-large-latest", "api.mistral.ai:443", {"MISTRAL_API_KEY": "mistral-0123456789abcdef"}),
    Egress("deepseek/deepseek-chat", "api.deepseek.com:443", {"DEEPSEEK_API_KEY": "sk-deepseek-0123456789abcd"}),
    Egress("together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", "api.together.xyz:443",
           {"TOGETHERAI_API_KEY": "together-0123456789abcdef"}),
    Egress("fireworks_ai/llama-v3p1-8b-instruct", "api.fireworks.ai:443",
           {"FIREWORKS_API_KEY": "fw-0123456789abcdef"}),
    Egress("openrouter/openai/gpt-4o", "openrouter.ai:443", {"OPENROUTER_API_KEY": "sk-or-0123456789abcdef"}),
    Egress("perplexity/sonar", "api.perplexity.ai:443", {"PERPLEXITYAI_API_KEY": "pplx-0123456789abcdef"}),
    Egress("xai/grok-3", "api.x.ai:443", {"XAI_API_KEY": "xai-0123456789abcdef"}),
    Egress("deepinfra/meta-llama/Llama-3.3-70B-Instruct", "api.deepinfra.com:443",
           {"DEEPINFRA_API_KEY": "deepinfra-0123456789abcdef"}),
    Egress("cerebras/llama3.1-8b", "api.cerebras.ai:443", {"CEREBRAS_API_KEY": "csk-0123456789abcdef"}),
    # Local servers' documented defaults are plain http, sent to the proxy in absolute form: no key here.
    Egress("ollama_chat/llama3", "http://localhost:11434/v1/chat/completions"),
    Egress("ollama/llama3", "http://localhost:11434/v1/chat/completions"),
    Egress("lm_studio/qwen2.5-7b-instruct", "http://localhost:1234/v1/chat/completions"),
    Egress("llamafile/mistral-7b", "http://127.0.0.1:8080/v1/chat/completions"),
]


class RefusingProxy:
    """An egress proxy that refuses every request (403) and keeps each request's head as received; but
    for OAuth token exchanges at ``TOKEN_URI``, which it answers with a token itself."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self._lock = threading.Lock()
        heads, lock = self.heads, self._lock

        class Refuse(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                received = b""
                while b"\r\n\r\n" not in received and len(received) < 65536:
                    part = self.request.recv(65536)
                    if not part:
                        break
                    received += part
                with lock:
                    heads.append(received)
                self.request.sendall(TOKEN_ANSWER if received.startswith(b"POST " + TOKEN_URI.encode()) else
                                     b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Refuse)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def targets_since(self, start: int) -> list[str]:  # the request target: CONNECT host:port, or a URL
        with self._lock:
            return [head.split(b"\r\n", 1)[0].split(b" ")[1].decode() for head in self.heads[start:]]

    def seen(self) -> bytes:
        with self._lock:
            return b"".join(self.heads)

    @contextmanager
    def running(self) -> Iterator[RefusingProxy]:
        thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


_TOKEN_BODY = json.dumps({"access_token": PROXY_TOKEN, "expires_in": 3600, "token_type": "Bearer"}).encode()
TOKEN_ANSWER = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(_TOKEN_BODY), _TOKEN_BODY))


def egress_params(row: Egress, account: dict[str, Any]) -> dict[str, Any]:
    credentials = {"vertex_credentials": json.dumps({**account, "token_uri": TOKEN_URI})} if row.oauth else {}
    return {"model": row.model, **row.params, **credentials}


def test_with_a_proxy_that_refuses_all_each_deployment_goes_to_its_own_default_host_only(tmp_path: Path) -> None:
    env = {name: value for row in EGRESS for name, value in row.env.items()}
    with FakeGemini() as keys:  # only for a service account's signing key: nothing is sent to it
        account = keys.service_account("proj-egress")
    models = [{"model_name": f"m{i}", "litellm_params": egress_params(row, account)} for i, row in enumerate(EGRESS)]
    attempted: dict[str, tuple[list[str], int]] = {}
    with RefusingProxy().running() as proxy:
        config = {"model_list": models, "spangate_settings": {"upstream_proxy": proxy.url}}
        with running_gateway(config, env=env, data_dir=tmp_path) as gw, client_of(gw) as client:
            for i, row in enumerate(EGRESS):
                start = len(proxy.heads)
                with pytest.raises(openai.APIStatusError) as refused:
                    client.chat.completions.create(model=f"m{i}", messages=HI)
                attempted[row.model] = sorted(set(proxy.targets_since(start))), refused.value.status_code
                told = f"{refused.value.message} {refused.value.body}"
                assert [key for key in env.values() if key in told] == [], row.model
    # A refused tunnel is the gateway's 502; a plain-http origin's answer is the proxy's own 403, passed on.
    # Vertex AI's token exchange went through the proxy too (google-auth's session is the gateway's choice).
    assert attempted == {row.model: (row.targets, 403 if row.target.startswith("http://") else 502)
                         for row in EGRESS}
    seen = proxy.seen()
    assert [name for name, key in env.items() if key.encode() in seen] == []
    assert b"authorization" not in seen.lower().replace(b"proxy-authorization", b"")
    assert PROXY_TOKEN.encode() not in seen and account["private_key"][40:80].encode() not in seen
