"""openmeter_events / encode_openmeter on hand-built gateway spans, checked as whole events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext

from contracts import semconv as sc
from exporters.openmeter.encode import encode_openmeter, openmeter_events, to_cloudevent
from tests.support.readable_spans import CHAT_OK, SPAN_HEX, START, error_span, span

TYPE = "spangate_tokens"
END_TIME = "2026-01-01T00:00:01.250000Z"  # readable_spans.END
SECRET_ATTRS = {sc.KEY_HASH: "9f86d081884c7d65", sc.KEY_ALIAS: "ci-key",
                sc.INPUT_MESSAGES: '[{"role":"user","parts":[{"type":"text","content":"my secret"}]}]'}


def gateway_span(attributes: dict[str, Any], **kwargs: Any) -> ReadableSpan:
    return span({sc.TEAM_ID: "team-a", **SECRET_ATTRS, **attributes}, **kwargs)


def event(subject: str = "team-a", span_id: str = SPAN_HEX, **data: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": span_id, "source": "spangate", "type": TYPE, "subject": subject,
            "time": END_TIME, "data": data}


CHAT_DATA = {"model": "gpt-4o-mini", "prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42,
             "cost": 0.0000198}


def test_chat_is_one_event_billed_to_the_team_with_model_tokens_and_cost():
    assert openmeter_events([gateway_span(CHAT_OK)], TYPE) == [event(**CHAT_DATA)]


def test_end_user_is_the_subject_when_the_request_names_one():
    spans = [gateway_span({**CHAT_OK, sc.END_USER: "customer-42"})]
    assert openmeter_events(spans, TYPE) == [event("customer-42", **CHAT_DATA)]


def test_without_end_user_or_team_the_usage_is_still_metered_as_anonymous():
    assert openmeter_events([span({**CHAT_OK, sc.END_USER: "  "})], TYPE) == [event("anonymous", **CHAT_DATA)]


def test_stream_counts_like_a_chat():
    stream = {**CHAT_OK, sc.REQUEST_STREAM: True, sc.RESPONSE_TIME_TO_FIRST_CHUNK: 0.2,
              sc.STREAM_OUTCOME: sc.STREAM_COMPLETED}
    assert openmeter_events([gateway_span(stream)], TYPE) == [event(**CHAT_DATA)]


def test_embedding_has_no_completion_tokens_and_counts_zero():
    embedding = {sc.OPERATION_NAME: sc.OP_EMBEDDINGS, sc.REQUEST_MODEL: "text-embedding-3-small",
                 sc.USAGE_INPUT_TOKENS: 8, sc.USAGE_COST: 1.6e-7}
    assert openmeter_events([gateway_span(embedding)], TYPE) == [
        event(model="text-embedding-3-small", prompt_tokens=8, completion_tokens=0, total_tokens=8, cost=1.6e-7)]


def test_failed_call_without_usage_produces_no_event():
    assert to_cloudevent(error_span(), TYPE) is None
    assert openmeter_events([error_span(), gateway_span(CHAT_OK)], TYPE) == [event(**CHAT_DATA)]


def test_successful_call_whose_upstream_reported_no_usage_produces_no_event():
    usage = {sc.USAGE_INPUT_TOKENS, sc.USAGE_OUTPUT_TOKENS, sc.USAGE_COST}
    no_usage = {k: v for k, v in CHAT_OK.items() if k not in usage}
    assert openmeter_events([gateway_span(no_usage)], TYPE) == []
    assert openmeter_events([gateway_span({**no_usage, sc.USAGE_INPUT_TOKENS: "12"})], TYPE) == []


@pytest.mark.parametrize("cost", [None, float("nan"), float("inf"), -1.0, "0.1", True])
def test_unknown_or_unusable_cost_is_left_out_rather_than_sent_as_zero(cost):
    attrs = {k: v for k, v in CHAT_OK.items() if k != sc.USAGE_COST}
    if cost is not None:
        attrs[sc.USAGE_COST] = cost
    data = {k: v for k, v in CHAT_DATA.items() if k != "cost"}
    assert openmeter_events([gateway_span(attrs)], TYPE) == [event(**data)]


def test_model_falls_back_to_the_response_model():
    attrs = {k: v for k, v in CHAT_OK.items() if k != sc.REQUEST_MODEL}
    (only,) = openmeter_events([gateway_span(attrs)], TYPE)
    assert only["data"]["model"] == "gpt-4o-mini-2024-07-18"


def test_event_id_is_the_span_id_so_a_resent_batch_dedupes():
    spans = [gateway_span(CHAT_OK, span_id=0x1), gateway_span(CHAT_OK, span_id=0xABCDEF0123456789)]
    assert [e["id"] for e in openmeter_events(spans, TYPE)] == ["0000000000000001", "abcdef0123456789"]
    assert openmeter_events(spans, TYPE) == openmeter_events(spans, TYPE)


def test_event_type_is_the_configured_one():
    (only,) = openmeter_events([gateway_span(CHAT_OK)], "litellm_tokens")
    assert only["type"] == "litellm_tokens"


def test_the_admin_apis_synthetic_test_span_goes_out_under_its_own_type_so_no_meter_bills_it():
    (only,) = openmeter_events([gateway_span({**CHAT_OK, sc.SYNTHETIC: True})], TYPE)
    assert only == {**event(**CHAT_DATA), "type": "spangate_callback_test"}


def test_body_is_a_compact_json_array_without_key_hash_or_content():
    body = encode_openmeter(openmeter_events([gateway_span(CHAT_OK), gateway_span(CHAT_OK, span_id=7)], TYPE))
    assert json.loads(body) == [event(**CHAT_DATA), event(span_id="0000000000000007", **CHAT_DATA)]
    assert b" " not in body
    for value in SECRET_ATTRS.values():
        assert value.encode() not in body
    assert encode_openmeter([]) == b"[]"


def test_time_is_utc_rfc3339_with_microseconds():
    context = SpanContext(1, 2, is_remote=False)
    late = ReadableSpan("chat", context, attributes=CHAT_OK, start_time=START, end_time=START + 86_399_999_999_999)
    assert to_cloudevent(late, TYPE)["time"] == "2026-01-01T23:59:59.999999Z"
