"""``file``: one JSON object per span per line, appended; a write failure is a FAILURE, not an exception."""

import json
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import Event
from opentelemetry.sdk.trace.export import SpanExportResult

from contracts import semconv as sc
from exporters.encode.span_json import span_to_dict
from exporters.file import FileConfig, FileSpanExporter
from tests.support.readable_spans import (
    CHAT_OK,
    END,
    PARENT_HEX,
    SPAN_HEX,
    START,
    TRACE_HEX,
    error_span,
    span,
)


def test_span_to_dict_is_the_whole_record() -> None:
    event = Event("gen_ai.choice", {"index": 0}, timestamp=START + 5)
    assert span_to_dict(span(CHAT_OK, parent=True, events=(event,))) == {
        "name": "chat gpt-4o-mini",
        "trace_id": TRACE_HEX,
        "span_id": SPAN_HEX,
        "parent_span_id": PARENT_HEX,
        "kind": "CLIENT",
        "start_time_unix_nano": START,
        "end_time_unix_nano": END,
        "duration_ms": 1250.0,
        "status": {"code": "OK", "description": None},
        "attributes": {**CHAT_OK, sc.RESPONSE_FINISH_REASONS: ["stop"]},
        "events": [{"name": "gen_ai.choice", "time_unix_nano": START + 5, "attributes": {"index": 0}}],
        "resource": {"service.name": "spangate"},
    }


def test_export_appends_one_line_per_span_and_creates_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "spans.jsonl"
    exporter = FileSpanExporter(FileConfig(path))
    assert exporter.export([span(CHAT_OK), error_span()]) is SpanExportResult.SUCCESS
    assert exporter.export([span(CHAT_OK, span_id=7)]) is SpanExportResult.SUCCESS
    exporter.shutdown()
    lines = path.read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["span_id"] for r in records] == [SPAN_HEX, SPAN_HEX, format(7, "016x")]
    assert records[1]["status"] == {"code": "ERROR", "description": "rate limited"}
    assert records[1]["attributes"][sc.ERROR_TYPE] == "rate_limit_exceeded"
    # a later exporter on the same path appends; it never truncates what was logged
    again = FileSpanExporter(FileConfig(path))
    assert again.export([span(CHAT_OK)]) is SpanExportResult.SUCCESS
    again.shutdown()
    assert len(path.read_text().splitlines()) == 4


def test_an_unwritable_path_is_a_retryable_failure_not_an_exception(tmp_path: Path) -> None:
    exporter = FileSpanExporter(FileConfig(tmp_path))  # a directory cannot be opened for append
    assert exporter.export([span(CHAT_OK)]) is SpanExportResult.FAILURE
    assert exporter.last_failure is not None
    assert exporter.last_failure.retryable
    assert str(tmp_path) in exporter.last_failure.detail


def test_file_config_vars() -> None:
    assert FileConfig.from_vars({"path": "/tmp/x.jsonl"}) == FileConfig(Path("/tmp/x.jsonl"))
    with pytest.raises(ValueError, match="missing var 'path' for file"):
        FileConfig.from_vars({})
    with pytest.raises(ValueError, match="unknown var 'mode' for file; allowed: path"):
        FileConfig.from_vars({"path": "x", "mode": "w"})
