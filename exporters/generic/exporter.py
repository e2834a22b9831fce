"""``SpanExporter`` for the generic webhook: POSTs to one endpoint with the configured headers.

``single`` (the default) sends one request per call with an ``Idempotency-Key`` header holding the
span id, and skips on a retry the calls the endpoint already accepted (``exporters.per_span``).
``json_array`` and ``ndjson`` send the batch the delivery layer hands over in one request; a 413
makes the delivery layer split it. No gzip: a webhook is whatever server the user wrote, and the
seed's reference receiver reads plain JSON.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from contracts.failures import ExportFailure
from exporters.generic.config import GenericConfig, LogFormat
from exporters.generic.encode import encode_json_array, encode_ndjson, encode_single
from exporters.per_span import SpanPoster
from exporters.transport.answers import post_batch
from exporters.transport.poster import poster_for

__all__ = ["IDEMPOTENCY_HEADER", "GenericSpanExporter"]

IDEMPOTENCY_HEADER = "Idempotency-Key"  # the IETF draft's name, which payment-style APIs already honour
_CONTENT_TYPES = {LogFormat.SINGLE: "application/json", LogFormat.JSON_ARRAY: "application/json",
                  LogFormat.NDJSON: "application/x-ndjson"}
_BATCH_ENCODERS = {LogFormat.JSON_ARRAY: encode_json_array, LogFormat.NDJSON: encode_ndjson}


class GenericSpanExporter(SpanExporter):
    def __init__(self, config: GenericConfig, client: httpx.Client) -> None:
        self._config = config
        self._http = poster_for(client)
        self._headers = {**dict(config.headers), "Content-Type": _CONTENT_TYPES[config.format]}
        self._poster = SpanPoster(client, config.endpoint, self._headers, encode_single,
                                  idempotency_header=IDEMPOTENCY_HEADER)
        self._shut_down = False
        self.last_failure: ExportFailure | None = None

    def __repr__(self) -> str:  # header values may be tokens
        return f"GenericSpanExporter(endpoint={self._config.endpoint!r}, format={self._config.format.value!r})"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shut_down:
            self.last_failure = ExportFailure(retryable=False, detail="exporter is shut down")
            return SpanExportResult.FAILURE
        self.last_failure = self._send(spans) if spans else None
        return SpanExportResult.FAILURE if self.last_failure else SpanExportResult.SUCCESS

    def _send(self, spans: Sequence[ReadableSpan]) -> ExportFailure | None:
        encode = _BATCH_ENCODERS.get(self._config.format)
        if encode is None:
            return self._poster.post_each(spans)
        return post_batch(self._http, self._config.endpoint, lambda: encode(spans), self._headers)

    def shutdown(self) -> None:
        self._shut_down = True  # the client is the shared one given in BuildContext: its owner closes it

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # nothing is buffered here
