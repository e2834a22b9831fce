"""``SpanExporter`` that writes one batch of calls to one S3 bucket (one PUT per object).

The first object goes alone, as a probe: a throttled or missing bucket then costs one request per
attempt, not one per call. The rest go ``PUT_WORKERS`` at a time on the same client (boto3 clients
are thread-safe): a PUT waits ~10 ms for S3, so one at a time would cap the default layout near 100
calls/s per destination. Any failure fails the export; the delivery layer retries the whole batch,
and the objects already written are overwritten by the same keys (see ``encode``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from contracts.failures import ExportFailure
from exporters.aws import LazyClient, failure_from_aws, make_client
from exporters.s3.config import S3Config
from exporters.s3.encode import S3Object, encode_s3
from exporters.transport.answers import encoding_failure

__all__ = ["PUT_WORKERS", "S3SpanExporter"]

PUT_WORKERS: Final = 8  # at most the client's connection pool (exporters.aws.make_client)


class S3SpanExporter(SpanExporter):
    """``client_factory`` makes the boto3 S3 client, on the first export's thread (``exporters.aws``)."""

    def __init__(self, config: S3Config, client_factory: Callable[[], Any] | None = None) -> None:
        self._config = config
        self._client = LazyClient(client_factory or (lambda: make_client("s3", config.access)))
        self._pool: ThreadPoolExecutor | None = None
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
        if not objects:
            return None
        try:
            client = self._client.get()
        except Exception as exc:
            return failure_from_aws(exc)
        put = partial(self._put, client)
        failures = [put(objects[0])]
        if failures[0] is None and len(objects) > 1:
            try:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(PUT_WORKERS, thread_name_prefix="spangate-s3-put")
                failures += self._pool.map(put, objects[1:])
            except RuntimeError as exc:  # shut down while exporting
                failures.append(ExportFailure(retryable=True, detail=str(exc), reason="exporter shut down"))
        self.puts += failures.count(None)
        return next((f for f in failures if f is not None), None)

    def _put(self, client: Any, obj: S3Object) -> ExportFailure | None:
        extra = {"ContentEncoding": obj.content_encoding} if obj.content_encoding else {}
        try:
            client.put_object(Bucket=self._config.bucket, Key=obj.key, Body=obj.body, ContentType=obj.content_type,
                              **extra)
        except Exception as exc:
            return failure_from_aws(exc)
        return None

    def shutdown(self) -> None:
        self._shut_down = True
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._client.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # nothing is buffered here
