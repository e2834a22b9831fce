"""Fail-over across providers, end to end: one model name served by an ``anthropic/`` deployment and a
``gemini/`` one, each pointed at its own loopback fake. A 429 from Anthropic moves the call on to
Gemini; the ``openai`` client gets Gemini's answer, and the span names the deployment that answered."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from openai import OpenAI

from contracts import semconv as sc
from tests.support.fake_anthropic import KEY, FakeAnthropic, Reply
from tests.support.fake_gemini import FakeGemini
from tests.support.gateway import RunningGateway, running_gateway

GEMINI_KEY = "AIza-failover-gemini-0123456789abcdef"
TAG = sc.metadata_key("test")


@contextmanager
def gateway(anthropic: FakeAnthropic, gemini: FakeGemini, data_dir: Path) -> Iterator[RunningGateway]:
    config = {
        "model_list": [
            {"model_name": "chat", "litellm_params": {"model": "anthropic/claude-haiku-4-5", "api_base": anthropic.url,
                                                      "api_key": KEY}, "model_info": {"id": "chat-on-anthropic"}},
            {"model_name": "chat", "litellm_params": {"model": "gemini/gemini-2.5-flash", "api_base": gemini.url,
                                                      "api_key": GEMINI_KEY}, "model_info": {"id": "chat-on-gemini"}},
        ],
        "litellm_settings": {"success_callback": ["file"], "failure_callback": ["file"]},
    }
    with running_gateway(config, env={}, data_dir=data_dir) as running:
        yield running


def test_a_429_from_anthropic_fails_over_to_gemini_and_the_span_says_gemini_answered(tmp_path: Path) -> None:
    with FakeAnthropic(KEY) as anthropic, FakeGemini(GEMINI_KEY) as gemini:
        anthropic.script(Reply(status=429, message="rate limited", headers={"retry-after": "3"}))
        with gateway(anthropic, gemini, tmp_path) as gw:
            with OpenAI(base_url=gw.openai_base_url, api_key="x", max_retries=0, timeout=10) as client:
                # Round robin: of two calls, one starts at Anthropic (refused) and one at Gemini.
                answers = [client.chat.completions.create(
                    model="chat", messages=[{"role": "user", "content": f"call {i}"}],
                    extra_body={"metadata": {"test": f"fo{i}"}}) for i in range(2)]
            spans = gw.wait_for_spans(2, where=lambda s: str(s["attributes"].get(TAG, "")).startswith("fo"))
        assert [a.choices[0].message.content for a in answers] == ["fake gemini says: call 0",
                                                                   "fake gemini says: call 1"]
        assert len(anthropic.requests) == 1 and len(gemini.requests) == 2
        answered = {(s["attributes"][sc.DEPLOYMENT_ID], s["attributes"][sc.PROVIDER_NAME],
                     s["attributes"][sc.RESPONSE_MODEL]) for s in spans}
        assert answered == {("chat-on-gemini", "gcp.gemini", "gemini-2.5-flash-001")}
        assert all(s["status"]["code"] != "ERROR" for s in spans)
