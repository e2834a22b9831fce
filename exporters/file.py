"""``file``: one JSON line per span, appended to a local file (the embedded default destination)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from contracts.failures import ExportFailure
from exporters.encode.span_json import span_to_dict
from exporters.plugin import DestinationType

_encode = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class FileConfig:
    path: Path

    @classmethod
    def from_vars(cls, values: Mapping[str, Any]) -> FileConfig:
        unknown = set(values) - {"path"}
        if unknown:
            raise ValueError(f"unknown var {sorted(unknown)[0]!r} for file; allowed: path")
        if not values.get("path"):
            raise ValueError("missing var 'path' for file")
        return cls(Path(str(values["path"])))


def create_span_log(config: FileConfig) -> None:
    """Create the (empty) file at start-up: its exporter opens it only with the first span, so a
    ``tail`` of it right after the first call failed for the batch delay (0.2 s) and more."""
    config.path.parent.mkdir(parents=True, exist_ok=True)
    config.path.touch(exist_ok=True)


class FileSpanExporter(SpanExporter):
    def __init__(self, config: FileConfig) -> None:
        self._path = config.path
        self._lock = threading.Lock()
        self._file: Any = None
        self.last_failure: ExportFailure | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            data = b"".join(_encode.encode(span_to_dict(span)) + b"\n" for span in spans)
            with self._lock:
                if self._file is None:
                    self._path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = open(self._path, "ab")  # noqa: SIM115 - kept open across exports
                self._file.write(data)
                self._file.flush()
        except OSError as exc:
            self.last_failure = ExportFailure(retryable=True, detail=f"cannot write {self._path}: {exc.strerror}")
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


DESTINATIONS = (
    DestinationType("file", FileConfig.from_vars, lambda config, _ctx: FileSpanExporter(config),
                    lambda inputs: {"path": str(inputs.ctx.span_log_path)}, team_configurable=False, spool=False),
)
