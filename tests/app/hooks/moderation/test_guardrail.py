"""Each Content Safety check as a guardrail span: the hook through the HookChain, the loopback stand-in,
the spans in an in-memory exporter under a real tracer provider."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from opentelemetry.metrics import NoOpMeter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, use_span

from app.hooks.chain import HookChain
from app.hooks.moderation import ModerationBlocked, ModerationInputTooLong, ModerationUnavailable
from app.server.hook_setup import HookResources, build_hooks
from app.wire.http11 import Http11Transport
from contracts import semconv as sc
from tests.app.hooks.moderation.support import chat_answer, chat_call, moderation_config
from tests.support.content_safety import ContentSafetyStandIn, Fault

MARK = "MARKER-guard-1"


@pytest.fixture
def cs() -> Iterator[ContentSafetyStandIn]:
    with ContentSafetyStandIn(key="cs-key-123") as stand_in:
        stand_in.score(MARK, Hate=6, Violence=2)
        yield stand_in


@asynccontextmanager
async def traced(cs: ContentSafetyStandIn, **params: Any) -> AsyncIterator[tuple[HookChain, Any, InMemorySpanExporter]]:
    """The chain as the gateway builds it, with the gateway span current as the proxy has it."""
    provider, memory = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("spangate")
    transport = Http11Transport()
    chain = build_hooks(moderation_config(cs, **params), {}, resources=HookResources(
        new_transport=lambda: transport, meter=NoOpMeter("t"), tracer=tracer))
    gateway_span = tracer.start_span("chat m")
    try:
        with use_span(gateway_span, end_on_exit=True):
            yield chain, gateway_span, memory
    finally:
        await chain.aclose()
        await transport.aclose()
        provider.shutdown()


def guardrails(memory: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in memory.get_finished_spans() if s.name == "apply_guardrail Azure AI Content Safety"]


async def test_a_passed_input_and_a_blocked_output_are_two_child_spans_with_result_events(
        cs: ContentSafetyStandIn) -> None:
    async with traced(cs) as (chain, parent, memory):
        call = chat_call("hello")
        await chain.before_upstream(call)
        call.response = chat_answer(f"here is {MARK}")
        with pytest.raises(ModerationBlocked):
            await chain.after_upstream(call)
    checked, blocked = guardrails(memory)
    for span in (checked, blocked):
        assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
        assert span.kind is SpanKind.CLIENT
        assert span.attributes is not None
        assert span.attributes[sc.OPERATION_NAME] == sc.OP_APPLY_GUARDRAIL
        assert span.attributes[sc.OPENINFERENCE_SPAN_KIND] == "GUARDRAIL"  # Phoenix's kind; it derives none
        assert span.attributes[sc.SERVER_PORT] == int(cs.endpoint.rsplit(":", 1)[1])
        assert MARK not in repr(dict(span.attributes)) + repr([dict(e.attributes or {}) for e in span.events])
    assert dict(checked.attributes or {})[sc.GUARDRAIL_SOURCE] == "input"
    assert dict(checked.attributes or {})[sc.GUARDRAIL_VERDICT] == "passed"
    assert {k: v for k, v in (blocked.attributes or {}).items() if k.startswith(("spangate.", "gen_ai.guardrail"))} == {
        sc.GUARDRAIL_COMPONENT_NAME: "Azure AI Content Safety", sc.GUARDRAIL_SOURCE: "output",
        sc.GUARDRAIL_VERDICT: "blocked", sc.MODERATION_CATEGORY: "Hate"}
    assert blocked.status.status_code is StatusCode.UNSET  # the guardrail worked: a block is its result, not an error
    scores = {e.attributes[sc.GUARDRAIL_RISK_CATEGORY]: e.attributes[sc.GUARDRAIL_RISK_SCORE]
              for e in blocked.events if e.attributes}
    assert scores == {"Hate": 6.0, "Violence": 2.0, "SelfHarm": 0.0, "Sexual": 0.0}


@pytest.mark.parametrize(("fail_open", "raised"), [(False, ModerationUnavailable), (True, None)])
async def test_no_verdict_is_an_error_span_whether_the_call_fails_or_goes_on(
        cs: ContentSafetyStandIn, fail_open: bool, raised: type[Exception] | None) -> None:
    cs.script(Fault(status=429, retry_after=3))
    async with traced(cs, fail_open=fail_open) as (chain, _parent, memory):
        call = chat_call("hello")
        if raised is None:
            await chain.before_upstream(call)
        else:
            with pytest.raises(raised):
                await chain.before_upstream(call)
    [span] = guardrails(memory)
    assert (span.status.status_code, span.status.description) == (StatusCode.ERROR, "http_429")
    attrs = dict(span.attributes or {})
    assert (attrs[sc.ERROR_TYPE], attrs[sc.GUARDRAIL_VERDICT]) == ("http_429", "unavailable")
    assert span.events == ()


async def test_an_input_over_the_limit_is_a_too_long_span_and_nothing_is_sent(cs: ContentSafetyStandIn) -> None:
    async with traced(cs, max_input_chars=10) as (chain, _parent, memory):
        with pytest.raises(ModerationInputTooLong):
            await chain.before_upstream(chat_call("x" * 11))
    [span] = guardrails(memory)
    assert dict(span.attributes or {})[sc.GUARDRAIL_VERDICT] == "too_long"
    assert cs.texts == []
