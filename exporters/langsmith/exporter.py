"""``SpanExporter`` that sends one batch to one LangSmith project over OTLP/HTTP.

One request per ``export`` call: batching, retries, back-off and splitting on 413 belong to the
delivery layer, which reads ``last_failure`` after a ``FAILURE``. The httpx client is injected and
owned by whoever built it (the registry's build context).
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from contracts.failures import ExportFailure
from exporters.base import post_batch
from exporters.langsmith.config import LangSmithConfig
from exporters.langsmith.encode import encode_langsmith
from exporters.otlp import GZIP_LEVEL
from exporters.otlp_encode import PROTOBUF_CONTENT_TYPE

__all__ = ["PROJECT_HEADER", "LangSmithSpanExporter"]

PROJECT_HEADER = "Langsmith-Project"
TENANT_HEADER = "X-Tenant-Id"


class LangSmithSpanExporter(SpanExporter):
    """POSTs gzipped OTLP protobuf to ``{base}/otel/v1/traces`` with ``x-api-key``; never raises."""

    def __init__(self, config: LangSmithConfig, client: httpx.Client) -> None:
        self._url = config.traces_url
        self._client = client
        headers = {"x-api-key": config.api_key, "Content-Type": PROTOBUF_CONTENT_TYPE, "Content-Encoding": "gzip"}
        if config.project is not None:
            headers[PROJECT_HEADER] = config.project
        if config.tenant_id is not None:
            headers[TENANT_HEADER] = config.tenant_id
        self._headers = headers
        self._shut_down = False
        self.last_failure: ExportFailure | None = None

    def __repr__(self) -> str:  # the headers hold the key; say only where data goes
        return f"LangSmithSpanExporter(url={self._url!r})"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shut_down:
            self.last_failure = ExportFailure(retryable=False, detail="exporter is shut down")
            return SpanExportResult.FAILURE
        if not spans:
            self.last_failure = None
            return SpanExportResult.SUCCESS
        self.last_failure = post_batch(  # gzip level: see exporters/otlp.py
            self._client, self._url, lambda: gzip.compress(encode_langsmith(spans), compresslevel=GZIP_LEVEL),
            self._headers)
        return SpanExportResult.FAILURE if self.last_failure else SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._shut_down = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # nothing is buffered here
