"""``console``: one concise line per LLM call, for people watching the gateway's terminal."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from contracts import semconv as sc
from exporters.plugin import DestinationType


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    @classmethod
    def from_vars(cls, values: Mapping[str, Any]) -> ConsoleConfig:
        if values:
            raise ValueError(f"unknown var {sorted(values)[0]!r} for console; it takes none")
        return cls()


def summary_line(span: ReadableSpan) -> str:
    a = span.attributes or {}
    ms = (span.end_time - span.start_time) / 1e6 if span.end_time and span.start_time else 0.0
    ok = span.status.status_code is not StatusCode.ERROR
    outcome = "ok" if ok else f"ERROR {a.get(sc.ERROR_TYPE, '')}".rstrip()
    parts = [f"{a.get(sc.OPERATION_NAME, span.name)} {a.get(sc.REQUEST_MODEL, '')}".strip(), outcome, f"{ms:.0f}ms"]
    if sc.USAGE_INPUT_TOKENS in a or sc.USAGE_OUTPUT_TOKENS in a:
        parts.append(f"tokens {a.get(sc.USAGE_INPUT_TOKENS, 0)}->{a.get(sc.USAGE_OUTPUT_TOKENS, 0)}")
    if sc.USAGE_COST in a:
        parts.append(f"${a[sc.USAGE_COST]:.6f}")
    if sc.TEAM_ID in a:
        parts.append(f"team {a.get(sc.TEAM_ALIAS) or a[sc.TEAM_ID]}")
    if sc.STREAM_OUTCOME in a:
        parts.append(f"stream {a[sc.STREAM_OUTCOME]}")
    return "spangate | " + " | ".join(parts)


class ConsoleSpanExporter(SpanExporter):
    def __init__(self, config: ConsoleConfig, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self._stream.write("".join(summary_line(span) + "\n" for span in spans))
            self._stream.flush()
        except (OSError, ValueError):
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


DESTINATIONS = (
    DestinationType("console", ConsoleConfig.from_vars, lambda config, ctx: ConsoleSpanExporter(config, ctx.console),
                    lambda _inputs: {}, team_configurable=False, spool=False),
)
