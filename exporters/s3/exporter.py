"""``SpanExporter`` that writes one batch of calls to one S3 bucket (one PUT per object).

Objects are written in order and the first failure ends the export: the delivery layer retries the
whole batch, and the objects already written are overwritten by the same keys (see ``encode``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from contracts.failures import ExportFailure
from exporters.aws import LazyClient, failure_from_aws, make_client
from exporters.base import encoding_failure
from exporters.s3.config import S3Config
from exporters.s3.encode import S3Object, encode_s3

__all__ = ["S3SpanExporter"]


class S3SpanExporter(SpanExporter):
    """``client_factory`` makes the boto3 S3 client, on the first export's thread (``exporters.aws``)."""

    def __init__(self, config: S3Config, client_factory: Callable[[], Any] | None = None) -> None:
        self._config = config
        self._client = LazyClient(client_factory or (lambda: make_client("s3", config.access)))
        self._shut_down = False
        self.puts = 0  # objects written, for the bench's PUTs-per-call figure
        self.last_failure: ExportFailure | None = None

    def __repr__(self) -> str:
        return f"S3SpanExporter(bucket={self._config.bucket!r}, path={self._config.path!r})"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shut_down:
            self.last_failure = ExportFailure(retryable=False, detail="exporter is shut down")
            return SpanExportResult.FAILURE
        try:
            objects = encode_s3(spans, self._config.path, self._config.batch)
        except Exception as exc:
            self.last_failure = encoding_failure(exc)
            return SpanExportResult.FAILURE
        self.last_failure = self._put_all(objects)
        return SpanExportResult.FAILURE if self.last_failure else SpanExportResult.SUCCESS

    def _put_all(self, objects: list[S3Object]) -> ExportFailure | None:
        try:
            client = self._client.get()
            for obj in objects:
                extra = {"ContentEncoding": obj.content_encoding} if obj.content_encoding else {}
                client.put_object(Bucket=self._config.bucket, Key=obj.key, Body=obj.body,
                                  ContentType=obj.content_type, **extra)
                self.puts += 1
        except Exception as exc:
            return failure_from_aws(exc)
        return None

    def shutdown(self) -> None:
        self._shut_down = True
        self._client.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # nothing is buffered here
