"""``SpanExporter`` that sends one batch to one Langfuse project over OTLP/HTTP.

One request per ``export`` call, nothing more: batching, retries, back-off and splitting on 413
belong to the delivery layer, which reads ``last_failure`` after a ``FAILURE``.

The httpx client is injected (its timeouts and connection limits are the caller's choice, and
several exporters may share one). The caller that created it closes it, unless it passes
``owns_client=True``, in which case ``shutdown`` closes it.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Sequence

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from contracts.failures import ExportFailure
from exporters.base import post_batch
from exporters.langfuse.config import LangfuseConfig
from exporters.langfuse.encode import encode_langfuse
from exporters.otlp import GZIP_LEVEL
from exporters.otlp_encode import PROTOBUF_CONTENT_TYPE

__all__ = ["INGESTION_VERSION", "LangfuseSpanExporter"]

# Without this header Langfuse v4 servers can show OTLP data only ~10 minutes later.
INGESTION_VERSION = "4"


class LangfuseSpanExporter(SpanExporter):
    """POSTs gzipped OTLP protobuf to ``{host}/api/public/otel/v1/traces``; never raises."""

    def __init__(self, config: LangfuseConfig, client: httpx.Client, *, owns_client: bool = False) -> None:
        self._url = config.traces_url
        self._client = client
        self._owns_client = owns_client
        self._headers = {
            "Authorization": _basic_auth(config.public_key, config.secret_key),
            "Content-Type": PROTOBUF_CONTENT_TYPE,
            "Content-Encoding": "gzip",
            "x-langfuse-ingestion-version": INGESTION_VERSION,
        }
        self._shut_down = False
        self.last_failure: ExportFailure | None = None

    def __repr__(self) -> str:  # the headers hold the secret; say only where data goes
        return f"LangfuseSpanExporter(url={self._url!r})"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shut_down:
            self.last_failure = ExportFailure(retryable=False, detail="exporter is shut down")
            return SpanExportResult.FAILURE
        if not spans:
            self.last_failure = None
            return SpanExportResult.SUCCESS
        self.last_failure = post_batch(  # gzip level: see exporters/otlp.py
            self._client, self._url, lambda: gzip.compress(encode_langfuse(spans), compresslevel=GZIP_LEVEL),
            self._headers)
        return SpanExportResult.FAILURE if self.last_failure else SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._shut_down = True
        if self._owns_client:
            self._client.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # nothing is buffered here


def _basic_auth(public_key: str, secret_key: str) -> str:
    token = base64.b64encode(f"{public_key}:{secret_key}".encode()).decode("ascii")
    return f"Basic {token}"
