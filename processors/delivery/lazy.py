"""An exporter built on first use, on the export thread that first needs it.

Building an exporter can be slow (a boto3 client reads its credential chain and endpoint data, a
Sentry client parses its DSN, ...) and the router's table is rebuilt on the event loop whenever a
team's callbacks change: 1,000 teams changed at once must not mean 1,000 client builds between
two requests. ``open`` therefore wraps the factory; the first ``export`` builds the real exporter
on a delivery thread, and a destination that never gets a span never builds one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from contracts.failures import ExportFailure, unrecognised


def _built() -> SpanExporter:
    raise AssertionError("a LazySpanExporter builds its exporter once")


class LazySpanExporter(SpanExporter):
    def __init__(self, factory: Callable[[], SpanExporter], key: str, logger: logging.Logger) -> None:
        self._factory, self._key, self._log = factory, key, logger
        self._inner: SpanExporter | None = None
        self._lock = threading.Lock()
        self._shut = False
        self._build_failure: ExportFailure | None = None

    @property
    def built(self) -> SpanExporter | None:
        return self._inner

    @property
    def last_failure(self) -> ExportFailure | None:
        if self._build_failure is not None:
            return self._build_failure
        return getattr(self._inner, "last_failure", None)

    def _exporter(self) -> SpanExporter | None:
        with self._lock:
            if self._inner is None and not self._shut:
                try:
                    self._inner = self._factory()
                    self._build_failure = None
                    self._factory = _built  # its closure (spec, context) is not needed any more
                except Exception as exc:  # retried with backoff, like any failure nobody understood
                    self._log.warning("destination %s: building its exporter failed: %s", self._key,
                                      type(exc).__name__, exc_info=True)
                    self._build_failure = unrecognised(exc)
            return self._inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        exporter = self._exporter()
        if exporter is None:
            return SpanExportResult.FAILURE
        return exporter.export(spans)

    def shutdown(self) -> None:
        with self._lock:
            self._shut = True
            inner = self._inner
        if inner is not None:
            inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        inner = self._inner
        return True if inner is None else inner.force_flush(timeout_millis)
