"""``SpanExporter`` that sends one batch to one LangSmith project over OTLP/HTTP.

One request per ``export`` call: batching, retries, back-off and splitting on 413 belong to the
delivery layer, which reads ``last_failure`` after a ``FAILURE``. The httpx client is injected and
owned by whoever built it (the registry's build context).
"""

from __future__ import annotations

import httpx

from exporters.encode.otlp_proto import PROTOBUF_CONTENT_TYPE
from exporters.langsmith.config import LangSmithConfig
from exporters.langsmith.encode import encode_langsmith
from exporters.transport.answers import GzipPostSpanExporter

__all__ = ["PROJECT_HEADER", "LangSmithSpanExporter"]

PROJECT_HEADER = "Langsmith-Project"
TENANT_HEADER = "X-Tenant-Id"


class LangSmithSpanExporter(GzipPostSpanExporter):
    """POSTs gzipped OTLP protobuf to ``{base}/otel/v1/traces`` with ``x-api-key``; never raises."""

    def __init__(self, config: LangSmithConfig, client: httpx.Client) -> None:
        headers = {"x-api-key": config.api_key, "Content-Type": PROTOBUF_CONTENT_TYPE}
        if config.project is not None:
            headers[PROJECT_HEADER] = config.project
        if config.tenant_id is not None:
            headers[TENANT_HEADER] = config.tenant_id
        super().__init__(client, config.traces_url, headers, encode_langsmith)
