"""Bedrock deployments against the loopback fake: every way to get credentials, signed as AWS checks.

Real parts: the deployment built from a parsed config, httpx's own transport on loopback, the fake
recomputing each SigV4 signature with botocore, moto's STS server for AssumeRole. Only the lifetime
of STS's answer is shortened (moto's last an hour) to see a refresh happen.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import httpx
import pytest

from app.config.settings import DeploymentConfig, parse_config
from app.providers.bedrock import BedrockDeployment, build
from app.providers.bedrock.auth import BedrockAuth, CredentialsUnavailable
from app.providers.native import Resources
from tests.support.aws import moto_server
from tests.support.fake_bedrock import FakeBedrock, Reply, moto_sts_lookup

REGION = "eu-central-1"
KEY_ID, SECRET, TOKEN = "AKIABEDROCKTEST00001", "bedrock/test+secret=" + "s" * 20, "session-token-" + "t" * 30
PROFILE_KEY, PROFILE_SECRET = "AKIAPROFILE000000001", "profile-secret-" + "p" * 25
ROLE = "arn:aws:iam::123456789012:role/bedrock-caller"
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(scope="module")
def sts() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    known = {KEY_ID: SECRET, "AKIATOKENED000000001": (SECRET, TOKEN), PROFILE_KEY: PROFILE_SECRET}
    with FakeBedrock(known, region=REGION, lookup=moto_sts_lookup, api_keys=frozenset({"bedrock-api-key-1"})) as f:
        yield f


@pytest.fixture
async def transport() -> Any:
    async with httpx.AsyncHTTPTransport() as running:
        yield running


@pytest.fixture
def no_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """botocore's chain reads the process environment and ~/.aws: neither may leak in from the runner."""
    import os

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata service: loopback only
    return monkeypatch


def config(fake: FakeBedrock, **params: Any) -> DeploymentConfig:
    raw = {"model_list": [{"model_name": "m", "litellm_params": {
        "model": f"bedrock/{MODEL}", "aws_region_name": REGION, "api_base": fake.url, **params}}]}
    return parse_config(raw, environ={}).deployments[0]


def deployment(cfg: DeploymentConfig, transport: Any, factory: Any = botocore.session.Session) -> BedrockDeployment:
    auth = BedrockAuth(cfg.params, "model 'm'", session_factory=factory)
    return BedrockDeployment(cfg, Resources(transport), auth)


async def chat(d: BedrockDeployment) -> dict[str, Any]:
    reply = await d.complete("chat", dict(CHAT))
    assert reply.status == 200, reply.body
    return json.loads(reply.body)


async def test_static_keys_sign_each_call_and_the_token_goes_with_them(transport: Any, fake: FakeBedrock) -> None:
    got = await chat(build(config(fake, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET),
                           Resources(transport)))
    assert got["choices"][0]["message"]["content"] == "You said: hello"
    d = build(config(fake, aws_access_key_id="AKIATOKENED000000001", aws_secret_access_key=SECRET,
                     aws_session_token=TOKEN), Resources(transport))
    await chat(d)
    assert fake.requests[-1].headers["x-amz-security-token"] == TOKEN
    assert fake.requests[-1].path == "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"


async def test_a_wrong_secret_is_the_services_403_in_openai_shape(transport: Any, fake: FakeBedrock) -> None:
    d = build(config(fake, aws_access_key_id=KEY_ID, aws_secret_access_key="wrong"),
              Resources(transport))
    reply = await d.complete("chat", dict(CHAT))
    assert reply.status == 403
    assert json.loads(reply.body)["error"]["code"] == "InvalidSignatureException"


async def test_a_bedrock_api_key_is_sent_as_a_bearer_token(transport: Any, fake: FakeBedrock) -> None:
    d = build(config(fake, api_key="bedrock-api-key-1"), Resources(transport))
    await chat(d)
    assert fake.requests[-1].headers["authorization"] == "Bearer bedrock-api-key-1"


class ShortLivedSts:
    """botocore sessions whose STS AssumeRole answers expire after ``lifetime``; records each call."""

    def __init__(self, lifetime: datetime.timedelta) -> None:
        self.lifetime = lifetime
        self.threads: list[int] = []

    def __call__(self, profile: str | None = None) -> Any:
        session = botocore.session.Session(profile=profile)
        original = session.create_client

        def create_client(*args: Any, **kwargs: Any) -> Any:
            client = original(*args, **kwargs)
            assume = client.assume_role

            def assume_role(**params: Any) -> Any:
                self.threads.append(threading.get_ident())
                got = assume(**params)
                got["Credentials"]["Expiration"] = datetime.datetime.now(datetime.UTC) + self.lifetime
                return got
            client.assume_role = assume_role
            return client
        session.create_client = create_client
        return session


def role_config(fake: FakeBedrock, sts: str) -> DeploymentConfig:
    return config(fake, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, aws_role_name=ROLE,
                  aws_session_name="spangate-test", aws_sts_endpoint=sts)


async def test_an_assumed_role_signs_with_stss_keys_loaded_off_the_loop_once(
        transport: Any, fake: FakeBedrock, sts: str) -> None:
    factory = ShortLivedSts(datetime.timedelta(hours=1))
    d = deployment(role_config(fake, sts), transport, factory)
    await asyncio.gather(*(chat(d) for _ in range(5)))  # five first calls, one AssumeRole
    await chat(d)
    assert len(factory.threads) == 1 and factory.threads[0] != threading.get_ident()
    seen = fake.requests[-1]
    assert seen.headers["authorization"].split("Credential=")[1].startswith("ASIA")  # STS's key, not KEY_ID
    secret, token = moto_sts_lookup(seen.headers["authorization"].split("Credential=")[1].split("/")[0])
    assert seen.headers["x-amz-security-token"] == token
    assert secret in d.config.secrets and token in d.config.secrets  # scrubbed from errors like api_key


async def test_credentials_about_to_expire_are_refreshed_before_the_call(
        transport: Any, fake: FakeBedrock, sts: str) -> None:
    factory = ShortLivedSts(datetime.timedelta(minutes=12))  # inside botocore's 15-minute advisory window
    d = deployment(role_config(fake, sts), transport, factory)
    await chat(d)
    first = fake.requests[-1].headers["x-amz-security-token"]
    await chat(d)
    assert len(factory.threads) == 2 and fake.requests[-1].headers["x-amz-security-token"] != first


async def test_a_refused_assume_role_is_a_502_without_the_services_text(transport: Any, fake: FakeBedrock) -> None:
    cfg = config(fake, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, aws_role_name=ROLE,
                 aws_sts_endpoint=fake.url)  # not an STS: it refuses
    with pytest.raises(CredentialsUnavailable) as caught:
        await deployment(cfg, transport).complete("chat", dict(CHAT))
    assert caught.value.status == 502 and KEY_ID not in caught.value.message


async def test_a_profile_from_the_shared_credentials_file(
        transport: Any, fake: FakeBedrock, no_aws_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "credentials").write_text(f"[bedrock]\naws_access_key_id = {PROFILE_KEY}\n"
                                          f"aws_secret_access_key = {PROFILE_SECRET}\n")
    await chat(deployment(config(fake, aws_profile_name="bedrock"), transport))
    assert f"Credential={PROFILE_KEY}/" in fake.requests[-1].headers["authorization"]


async def test_the_default_chain_when_nothing_is_given(
        transport: Any, fake: FakeBedrock, no_aws_env: pytest.MonkeyPatch) -> None:
    no_aws_env.setenv("AWS_ACCESS_KEY_ID", PROFILE_KEY)
    no_aws_env.setenv("AWS_SECRET_ACCESS_KEY", PROFILE_SECRET)
    d = deployment(config(fake), transport)
    await chat(d)
    assert f"Credential={PROFILE_KEY}/" in fake.requests[-1].headers["authorization"]
    assert PROFILE_SECRET in d.config.secrets


async def test_no_credentials_anywhere_is_a_502_naming_where_it_looked(transport: Any, fake: FakeBedrock,
                                                                      no_aws_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(CredentialsUnavailable) as caught:
        await deployment(config(fake), transport).complete("chat", dict(CHAT))
    assert caught.value.status == 502 and "default chain" in caught.value.message


async def test_a_stream_is_signed_for_converse_stream_and_its_error_keeps_the_header_name(
        transport: Any, fake: FakeBedrock) -> None:
    d = build(config(fake, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET),
              Resources(transport))
    fake.script(Reply(status=429, error_type="ModelNotReadyException", message="warming up"))
    handle = await d.stream("chat", {**CHAT, "stream": True})
    assert handle.status == 429
    assert json.loads(await handle.read())["error"] == {"message": "warming up", "type": "rate_limit_error",
                                                        "code": "ModelNotReadyException"}
    await handle.aclose()
    assert fake.requests[-1].path.endswith("/converse-stream")
    assert fake.requests[-1].headers["accept"] == "application/vnd.amazon.eventstream"
