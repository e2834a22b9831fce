"""Fail-over across providers, end to end: one model name served by an ``anthropic/`` deployment and a
``gemini/`` (or ``bedrock/``) one, each pointed at its own loopback fake. A 429 from Anthropic moves
the call on; the ``openai`` client gets the other provider's answer, and the span names the
deployment that answered."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from contracts import semconv as sc
from tests.support.fake_anthropic import KEY, FakeAnthropic, Reply
from tests.support.fake_bedrock import FakeBedrock
from tests.support.fake_gemini import FakeGemini
from tests.support.gateway import RunningGateway, running_gateway

GEMINI_KEY = "AIza-failover-gemini-0123456789abcdef"
AWS_KEY_ID, AWS_SECRET, REGION = "AKIAFAILOVER00000001", "failover-aws-secret-0123456789abcdef", "us-west-2"
BEDROCK_MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
TAG = sc.metadata_key("test")


@dataclass(frozen=True)
class Other:
    """The deployment that takes over: how to start its fake, its litellm_params, what it answers."""

    name: str
    provider_name: str
    response_model: str
    answer: str  # for "call {i}"

    def start(self, stack: ExitStack) -> Any:
        if self.name == "gemini":
            return stack.enter_context(FakeGemini(GEMINI_KEY))
        return stack.enter_context(FakeBedrock({AWS_KEY_ID: AWS_SECRET}, region=REGION))

    def params(self, fake: Any) -> dict[str, Any]:
        if self.name == "gemini":
            return {"model": "gemini/gemini-2.5-flash", "api_base": fake.url, "api_key": GEMINI_KEY}
        return {"model": f"bedrock/{BEDROCK_MODEL}", "api_base": fake.url, "aws_region_name": REGION,
                "aws_access_key_id": AWS_KEY_ID, "aws_secret_access_key": AWS_SECRET}


OTHERS = [Other("gemini", "gcp.gemini", "gemini-2.5-flash-001", "fake gemini says: call {i}"),
          Other("bedrock", "aws.bedrock", BEDROCK_MODEL, "You said: call {i}")]


@contextmanager
def gateway(anthropic: FakeAnthropic, other: Other, fake: Any, data_dir: Path) -> Iterator[RunningGateway]:
    config = {
        "model_list": [
            {"model_name": "chat", "litellm_params": {"model": "anthropic/claude-haiku-4-5", "api_base": anthropic.url,
                                                      "api_key": KEY}, "model_info": {"id": "chat-on-anthropic"}},
            {"model_name": "chat", "litellm_params": other.params(fake), "model_info": {"id": f"chat-on-{other.name}"}},
        ],
        "litellm_settings": {"success_callback": ["file"], "failure_callback": ["file"]},
    }
    with running_gateway(config, env={}, data_dir=data_dir) as running:
        yield running


@pytest.mark.parametrize("other", OTHERS, ids=lambda o: o.name)
def test_a_429_from_anthropic_fails_over_and_the_span_says_who_answered(tmp_path: Path, other: Other) -> None:
    with ExitStack() as stack:
        anthropic = stack.enter_context(FakeAnthropic(KEY))
        fake = other.start(stack)
        anthropic.script(Reply(status=429, message="rate limited", headers={"retry-after": "3"}))
        gw = stack.enter_context(gateway(anthropic, other, fake, tmp_path))
        with OpenAI(base_url=gw.openai_base_url, api_key="x", max_retries=0, timeout=10) as client:
            # Round robin: of two calls, one starts at Anthropic (refused) and one at the other provider.
            answers = [client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": f"call {i}"}],
                extra_body={"metadata": {"test": f"fo{i}"}}) for i in range(2)]
        spans = gw.wait_for_spans(2, where=lambda s: str(s["attributes"].get(TAG, "")).startswith("fo"))
        assert [a.choices[0].message.content for a in answers] == [other.answer.format(i=i) for i in range(2)]
        assert len(anthropic.requests) == 1 and len(fake.requests) == 2
        answered = {(s["attributes"][sc.DEPLOYMENT_ID], s["attributes"][sc.PROVIDER_NAME],
                     s["attributes"][sc.RESPONSE_MODEL]) for s in spans}
        assert answered == {(f"chat-on-{other.name}", other.provider_name, other.response_model)}
        assert all(s["status"]["code"] != "ERROR" for s in spans)
