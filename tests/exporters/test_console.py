"""``console``: one concise line per LLM call."""

import io

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

from contracts import semconv as sc
from exporters.console import ConsoleConfig, ConsoleSpanExporter, summary_line
from tests.support.readable_spans import CHAT_OK, error_span, span


def test_a_successful_call_shows_model_outcome_time_tokens_and_cost() -> None:
    assert summary_line(span(CHAT_OK)) == "spangate | chat gpt-4o-mini | ok | 1250ms | tokens 12->30 | $0.000020"


def test_team_and_stream_outcome_are_shown_when_present() -> None:
    attrs = {sc.OPERATION_NAME: sc.OP_CHAT, sc.REQUEST_MODEL: "m", sc.TEAM_ID: "t-1", sc.TEAM_ALIAS: "search",
             sc.STREAM_OUTCOME: sc.STREAM_CLIENT_DISCONNECTED}
    assert summary_line(span(attrs)) == "spangate | chat m | ok | 1250ms | team search | stream client_disconnected"


def test_a_failed_call_shows_its_error_type() -> None:
    assert summary_line(error_span()) == "spangate | chat gpt-4o-mini | ERROR rate_limit_exceeded | 1250ms"


def test_export_writes_one_line_per_span() -> None:
    out = io.StringIO()
    exporter = ConsoleSpanExporter(ConsoleConfig(), out)
    assert exporter.export([span(CHAT_OK), error_span()]) is SpanExportResult.SUCCESS
    assert out.getvalue().splitlines() == [summary_line(span(CHAT_OK)), summary_line(error_span())]


def test_a_closed_stream_is_a_failure_not_an_exception() -> None:
    out = io.StringIO()
    out.close()
    assert ConsoleSpanExporter(ConsoleConfig(), out).export([span(CHAT_OK)]) is SpanExportResult.FAILURE


def test_console_takes_no_vars() -> None:
    assert ConsoleConfig.from_vars({}) == ConsoleConfig()
    with pytest.raises(ValueError, match="unknown var 'color' for console"):
        ConsoleConfig.from_vars({"color": True})
