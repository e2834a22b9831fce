"""``SpanExporter`` that logs each call to Athina: one ``POST /api/v1/log/inference`` per span.

Athina's logging API takes one inference per request and has no idempotency key, so calls already
accepted are skipped when the delivery layer retries a batch (``exporters.per_span``).
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from contracts.failures import ExportFailure
from exporters.athina.config import AthinaConfig
from exporters.athina.encode import encode_athina
from exporters.per_span import SpanPoster

__all__ = ["API_KEY_HEADER", "AthinaSpanExporter"]

API_KEY_HEADER = "athina-api-key"


class AthinaSpanExporter(SpanExporter):
    def __init__(self, config: AthinaConfig, client: httpx.Client) -> None:
        self._url = config.inference_url
        headers = {API_KEY_HEADER: config.api_key, "Content-Type": "application/json"}
        self._poster = SpanPoster(client, self._url, headers, encode_athina)
        self._shut_down = False
        self.last_failure: ExportFailure | None = None

    def __repr__(self) -> str:  # the headers hold the API key
        return f"AthinaSpanExporter(url={self._url!r})"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shut_down:
            self.last_failure = ExportFailure(retryable=False, detail="exporter is shut down")
            return SpanExportResult.FAILURE
        self.last_failure = self._poster.post_each(spans)
        return SpanExportResult.FAILURE if self.last_failure else SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._shut_down = True  # the client is the shared one given in BuildContext: its owner closes it

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # nothing is buffered here
