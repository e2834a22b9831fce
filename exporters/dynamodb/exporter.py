"""``SpanExporter`` that writes one batch of calls to one DynamoDB table with ``BatchWriteItem``.

25 items per call (DynamoDB's limit). Items DynamoDB leaves unprocessed (throttling, a hot
partition) are sent again a few times with a short backoff, as AWS advises; what is still left
after that fails the export as retryable, and the delivery layer resends the batch later (a put of
the same ``id`` replaces the item, so nothing is written twice).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final

from boto3.dynamodb.types import TypeSerializer
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from contracts.failures import ExportFailure
from exporters.aws import LazyClient, failure_from_aws, make_client
from exporters.dynamodb.config import DynamoDBConfig
from exporters.dynamodb.encode import encode_dynamodb
from exporters.transport.answers import encoding_failure

__all__ = ["BATCH_SIZE", "DynamoDBSpanExporter"]

log = logging.getLogger(__name__)

BATCH_SIZE: Final = 25
UNPROCESSED_ROUNDS: Final = 4  # resends of unprocessed items within one export: 50, 100, 200 ms apart
_FIRST_BACKOFF = 0.05


class DynamoDBSpanExporter(SpanExporter):
    """``client_factory`` makes the boto3 DynamoDB client, on the first export's thread (``exporters.aws``)."""

    def __init__(self, config: DynamoDBConfig, client_factory: Callable[[], Any] | None = None) -> None:
        self._config = config
        self._client = LazyClient(client_factory or (lambda: make_client("dynamodb", config.access)))
        self._serialize = TypeSerializer().serialize
        self._shut_down = threading.Event()  # also wakes a backoff wait at shutdown
        self.truncated_items = 0  # items cut to fit 400 KB, since start
        self.last_failure: ExportFailure | None = None

    def __repr__(self) -> str:
        return f"DynamoDBSpanExporter(table={self._config.table!r})"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shut_down.is_set():
            self.last_failure = ExportFailure(retryable=False, detail="exporter is shut down")
            return SpanExportResult.FAILURE
        try:
            encoded = encode_dynamodb(spans)
            # One batch may not name an id twice; the last copy of a span wins.
            requests = list({item["id"]: {"PutRequest": {"Item": {k: self._serialize(v) for k, v in item.items()}}}
                             for item in encoded.items}.values())
        except Exception as exc:
            self.last_failure = encoding_failure(exc)
            return SpanExportResult.FAILURE
        if encoded.truncated:
            self.truncated_items += encoded.truncated
            log.warning("dynamodb %s: %d item(s) over 400 KB had content truncated (%d since start)",
                        self._config.table, encoded.truncated, self.truncated_items)
        self.last_failure = self._write_all(requests)
        return SpanExportResult.FAILURE if self.last_failure else SpanExportResult.SUCCESS

    def _write_all(self, requests: list[dict[str, Any]]) -> ExportFailure | None:
        try:
            client = self._client.get()
            for start in range(0, len(requests), BATCH_SIZE):
                failure = self._write(client, requests[start:start + BATCH_SIZE])
                if failure is not None:
                    return failure
        except Exception as exc:
            return failure_from_aws(exc)
        return None

    def _write(self, client: Any, chunk: list[dict[str, Any]]) -> ExportFailure | None:
        table, pending, backoff = self._config.table, chunk, _FIRST_BACKOFF
        for round_ in range(UNPROCESSED_ROUNDS):
            if round_ and self._shut_down.wait(backoff):
                break
            answer = client.batch_write_item(RequestItems={table: pending})
            pending = (answer.get("UnprocessedItems") or {}).get(table) or []
            if not pending:
                return None
            backoff *= 2
        return ExportFailure(retryable=True, detail=f"{len(pending)} item(s) left unprocessed by DynamoDB",
                             reason="throttled (unprocessed items)")

    def shutdown(self) -> None:
        self._shut_down.set()
        self._client.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # nothing is buffered here
