"""Content Safety checks as guardrail spans, end to end: the real gateway, the official openai client,
a fake OpenAI upstream, the loopback Content Safety stand-in, and a loopback OTLP receiver behind the
``otel`` destination (a trace destination) beside the ``file`` destination (an LLM-log destination).

Each check is an ``apply_guardrail Azure AI Content Safety`` CLIENT span, a child of the call's span in
its trace, stream windows included; the receiver reads its attributes and result events; the call
log gets calls only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from contracts import semconv as sc
from tests.e2e.gateway.test_gateway_e2e import openai_model
from tests.support.content_safety import ContentSafetyStandIn
from tests.support.gateway import running_gateway
from tests.support.otlp import OtlpSink
from tests.support.upstream import FakeOpenAI

FLAGGED = "INPUT-MARK-31"
GUARDRAIL = "apply_guardrail Azure AI Content Safety"


def gateway(tmp_path: Path, upstream: FakeOpenAI, cs: ContentSafetyStandIn, collector: OtlpSink) -> Any:
    litellm = {"callbacks": ["azure_content_safety"], "success_callback": ["file", "otel"],
               "failure_callback": ["file", "otel"],
               "azure_content_safety_params": {"endpoint": cs.endpoint, "key": "os.environ/CS_KEY"}}
    return running_gateway({"model_list": [openai_model("gpt", upstream)], "litellm_settings": litellm},
                           data_dir=tmp_path, env={"CS_KEY": cs.key, "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url})


def by_name(spans: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["name"] == name]


def test_each_check_is_a_guardrail_child_span_in_the_calls_trace(tmp_path: Path) -> None:
    with FakeOpenAI() as upstream, ContentSafetyStandIn(key="cs-key") as cs, OtlpSink() as collector:
        cs.score(FLAGGED, Hate=6)
        with (gateway(tmp_path, upstream, cs, collector) as gw,
              OpenAI(base_url=gw.openai_base_url, api_key="x", max_retries=0) as client):
            assert client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hello"}])
            with pytest.raises(openai.BadRequestError):
                client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": f"x {FLAGGED}"}])
            stream = client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "streamed"}],
                                                    stream=True)
            assert [chunk for chunk in stream]
            gw.wait_for_spans(3)
        spans = collector.spans()  # stopping the gateway flushed delivery: every span is here by now
        logged = gw.spans()
    calls = by_name(spans, "chat gpt")
    guardrails = by_name(spans, GUARDRAIL)
    assert len(calls) == 3
    # input + output of the plain call, the blocked input, the stream's input and its output window(s)
    assert len(guardrails) >= 4
    parents = {c["span_id"]: c for c in calls}
    for g in guardrails:
        parent = parents[g["parent_span_id"]]  # a child of a call's span...
        assert g["trace_id"] == parent["trace_id"]  # ...in its trace
        assert g["kind"] == "CLIENT"
        assert {k: g["attributes"][k] for k in (sc.OPERATION_NAME, sc.PROVIDER_NAME, sc.GUARDRAIL_COMPONENT_NAME)} == {
            sc.OPERATION_NAME: "apply_guardrail", sc.PROVIDER_NAME: "azure.ai.content_safety",
            sc.GUARDRAIL_COMPONENT_NAME: "Azure AI Content Safety"}
        assert g["attributes"][sc.SERVER_ADDRESS] == "127.0.0.1"
        assert FLAGGED not in repr(g) and "hello" not in repr(g)  # categories and severities, never the text
    blocked = [g for g in guardrails if g["attributes"][sc.GUARDRAIL_VERDICT] == "blocked"]
    assert [(g["attributes"][sc.GUARDRAIL_SOURCE], g["attributes"][sc.MODERATION_CATEGORY]) for g in blocked] == [
        ("input", "Hate")]
    hate = [e["attributes"] for e in blocked[0]["events"] if e["attributes"][sc.GUARDRAIL_RISK_CATEGORY] == "Hate"]
    assert hate == [{sc.GUARDRAIL_COMPONENT_NAME: "Azure AI Content Safety",
                     sc.PROVIDER_NAME: "azure.ai.content_safety", sc.GUARDRAIL_RESULT_TYPE: "severity",
                     sc.GUARDRAIL_RESULT_VALUE: "6",
                     sc.GUARDRAIL_RISK_CATEGORY: "Hate", sc.GUARDRAIL_RISK_SCORE: 6.0}]
    assert {e["name"] for g in guardrails for e in g["events"]} == {sc.GUARDRAIL_RESULT_EVENT}
    stream_call = next(c for c in calls if c["attributes"].get(sc.REQUEST_STREAM))
    stream_checks = [g for g in guardrails if g["parent_span_id"] == stream_call["span_id"]]
    assert {g["attributes"][sc.GUARDRAIL_SOURCE] for g in stream_checks} == {"input", "output"}
    # The call log (an LLM-log destination) gets the calls, not their guardrail checks.
    assert sorted(s["name"] for s in logged) == ["chat gpt"] * 3
