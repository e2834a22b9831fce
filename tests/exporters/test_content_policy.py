"""A destination's own content policy: its copy of a span is stripped, the original is not."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext, SpanKind

from contracts import semconv as sc
from contracts.failures import ExportFailure
from exporters.content_policy import REDACTED, MessageLogging, message_logging, with_content_policy

PROMPT = "my secret prompt 91c2"
ANSWER = "my secret answer 44b0"
CONTENT = {
    sc.INPUT_MESSAGES: json.dumps([{"role": "user", "parts": [{"type": "text", "content": PROMPT}]}]),
    sc.SYSTEM_INSTRUCTIONS: json.dumps([{"type": "text", "content": "be terse " + PROMPT}]),
    sc.OUTPUT_MESSAGES: json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": ANSWER}],
                                     "finish_reason": "stop"}]),
    sc.metadata_key("raw_request"): f"curl -d '{PROMPT}'",
}


def call_span() -> ReadableSpan:
    return ReadableSpan(name="chat gpt-4o", context=SpanContext(1, 2, is_remote=False), kind=SpanKind.CLIENT,
                        attributes={sc.REQUEST_MODEL: "gpt-4o", sc.USAGE_INPUT_TOKENS: 3, **CONTENT},
                        start_time=1, end_time=2)


class Keeper(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self.last_failure = ExportFailure(retryable=False, detail="HTTP 401", status=401)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def exported(policy: MessageLogging) -> tuple[ReadableSpan, ReadableSpan, SpanExporter]:
    inner, original = Keeper(), call_span()
    exporter = with_content_policy(inner, policy)
    assert exporter.export([original]) is SpanExportResult.SUCCESS
    return original, inner.spans[0], exporter


def test_none_removes_the_content_attributes_and_keeps_the_rest() -> None:
    original, sent, exporter = exported(MessageLogging.NONE)
    assert dict(sent.attributes) == {sc.REQUEST_MODEL: "gpt-4o", sc.USAGE_INPUT_TOKENS: 3}
    assert (sent.context, sent.name, sent.end_time) == (original.context, original.name, original.end_time)
    assert dict(original.attributes) == {sc.REQUEST_MODEL: "gpt-4o", sc.USAGE_INPUT_TOKENS: 3, **CONTENT}
    assert exporter.last_failure.status == 401  # what the delivery layer reads passes through


def test_redacted_keeps_roles_and_finish_reasons_with_the_text_replaced() -> None:
    _original, sent, _ = exported(MessageLogging.REDACTED)
    attrs = dict(sent.attributes)
    assert PROMPT not in repr(attrs) and ANSWER not in repr(attrs)
    assert sc.metadata_key("raw_request") not in attrs
    assert json.loads(attrs[sc.INPUT_MESSAGES]) == [{"role": "user", "parts": [{"type": "text", "content": REDACTED}]}]
    assert json.loads(attrs[sc.OUTPUT_MESSAGES]) == [{"role": "assistant", "finish_reason": "stop",
                                                      "parts": [{"type": "text", "content": REDACTED}]}]
    assert json.loads(attrs[sc.SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": REDACTED}]


def test_full_is_the_exporter_itself() -> None:
    inner = Keeper()
    assert with_content_policy(inner, MessageLogging.FULL) is inner


@pytest.mark.parametrize(("entry_vars", "policy"), [
    ({}, MessageLogging.FULL), ({"turn_off_message_logging": False}, MessageLogging.FULL),
    ({"turn_off_message_logging": True}, MessageLogging.REDACTED), ({"message_logging": "none"}, MessageLogging.NONE),
    ({"message_logging": "full", "turn_off_message_logging": True}, MessageLogging.FULL)])
def test_an_entry_asks_by_message_logging_or_litellms_flag(entry_vars: dict, policy: MessageLogging) -> None:
    assert message_logging(entry_vars) is policy


@pytest.mark.parametrize("entry_vars", [{"message_logging": "off"}, {"turn_off_message_logging": "yes"}])
def test_other_values_are_refused(entry_vars: dict) -> None:
    with pytest.raises(ValueError, match="must be"):
        message_logging(entry_vars)
