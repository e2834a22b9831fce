"""``SpanExporter`` that sends one batch to one Langfuse project over OTLP/HTTP.

One request per ``export`` call, nothing more: batching, retries, back-off and splitting on 413
belong to the delivery layer, which reads ``last_failure`` after a ``FAILURE``.

The httpx client is injected (its timeouts and connection limits are the caller's choice, and
several exporters may share one). The caller that created it closes it, unless it passes
``owns_client=True``, in which case ``shutdown`` closes it.
"""

from __future__ import annotations

import base64

import httpx

from exporters.encode.otlp_proto import PROTOBUF_CONTENT_TYPE
from exporters.langfuse.config import LangfuseConfig
from exporters.langfuse.encode import encode_langfuse
from exporters.transport.answers import GzipPostSpanExporter

__all__ = ["INGESTION_VERSION", "LangfuseSpanExporter"]

# Without this header Langfuse v4 servers can show OTLP data only ~10 minutes later.
INGESTION_VERSION = "4"


class LangfuseSpanExporter(GzipPostSpanExporter):
    """POSTs gzipped OTLP protobuf to ``{host}/api/public/otel/v1/traces``; never raises."""

    def __init__(self, config: LangfuseConfig, client: httpx.Client, *, owns_client: bool = False) -> None:
        super().__init__(client, config.traces_url, {
            "Authorization": _basic_auth(config.public_key, config.secret_key),
            "Content-Type": PROTOBUF_CONTENT_TYPE,
            "x-langfuse-ingestion-version": INGESTION_VERSION,
        }, encode_langfuse, owns_client=owns_client)


def _basic_auth(public_key: str, secret_key: str) -> str:
    return "Basic " + base64.b64encode(f"{public_key}:{secret_key}".encode()).decode("ascii")
