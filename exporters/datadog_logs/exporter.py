"""``SpanExporter`` that sends one batch to one Datadog account through datadog-api-client.

``LogsApi.submit_log`` with gzip, one request per chunk of ``encode_datadog``. Retries, back-off and
splitting belong to the delivery layer, which reads ``last_failure`` after a ``FAILURE``. A batch
is reported as failed when any chunk fails. Datadog has no idempotency key, so the exporter
remembers the spans of the chunks it did get accepted (only batches over 1,000 logs or 5 MB have
more than one) and leaves them out when the delivery layer retries the batch.

The ``ApiClient`` is the exporter's own (``new_api_client``), closed in ``shutdown``. It is built so
that nothing outside the config decides where the key goes: the library's own reading of
``DD_SITE``/``DD_API_KEY``/``DD_APP_KEY`` from the process environment is overwritten, and urllib3
neither retries (the delivery layer does) nor follows redirects (urllib3 strips ``Authorization``
on a cross-host redirect, not ``DD-API-KEY``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import urllib3
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException
from datadog_api_client.v2.api.logs_api import LogsApi
from datadog_api_client.v2.model.content_encoding import ContentEncoding
from datadog_api_client.v2.model.http_log import HTTPLog
from datadog_api_client.v2.model.http_log_item import HTTPLogItem
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from contracts.failures import EXCERPT, ExportFailure, failure_from_status, unrecognised
from exporters.datadog_logs.config import DatadogConfig
from exporters.datadog_logs.encode import LogLabels, encode_datadog
from exporters.transport.answers import encoding_failure

__all__ = ["DatadogSpanExporter", "failure_from_exception", "new_api_client"]

TIMEOUT = (5.0, 30.0)  # connect, read: seconds
MAX_REMEMBERED = 20_000  # accepted spans of failed batches kept for their retry (a few MB at most)


def new_api_client(config: DatadogConfig) -> ApiClient:
    """A client that sends ``config.api_key`` to ``config.intake_url`` and nowhere else."""
    configuration = Configuration(host=config.base_url) if config.base_url else Configuration()
    configuration.api_key = {"apiKeyAuth": config.api_key}  # replaces DD_API_KEY/DD_APP_KEY read from os.environ
    if not config.base_url:
        configuration.server_index = 0
        configuration.server_variables = {"site": config.site}  # replaces DD_SITE read from os.environ
    configuration.request_timeout = TIMEOUT
    configuration.retry_policy = urllib3.Retry(total=0, redirect=False, raise_on_status=False)
    return ApiClient(configuration)


class DatadogSpanExporter(SpanExporter):
    """Spans -> Datadog logs (``POST /api/v2/logs``, gzip, ``DD-API-KEY``); never raises."""

    def __init__(self, config: DatadogConfig, client: ApiClient) -> None:
        self._url = config.intake_url
        self._labels = LogLabels(config.source, config.service, config.env)
        self._client = client
        self._logs = LogsApi(client)
        self._shut_down = False
        self._accepted_of_failed: set[str] = set()  # span ids (hex) sent in batches that then failed
        self.last_failure: ExportFailure | None = None

    def __repr__(self) -> str:  # the client holds the key; say only where data goes
        return f"DatadogSpanExporter(url={self._url!r})"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.last_failure = self._export(spans)
        return SpanExportResult.FAILURE if self.last_failure else SpanExportResult.SUCCESS

    def _export(self, spans: Sequence[ReadableSpan]) -> ExportFailure | None:
        if self._shut_down:
            return ExportFailure(retryable=False, detail="exporter is shut down")
        try:
            chunks = encode_datadog(self._not_yet_accepted(spans), self._labels)
            bodies = [_http_log(chunk) for chunk in chunks]
        except Exception as exc:
            return encoding_failure(exc)
        for n, body in enumerate(bodies):
            try:
                self._logs.submit_log(body=body, content_encoding=ContentEncoding.GZIP)
            except Exception as exc:
                self._remember(item["span_id"] for chunk in chunks[:n] for item in chunk)
                return failure_from_exception(exc)
        return None

    def _not_yet_accepted(self, spans: Sequence[ReadableSpan]) -> Sequence[ReadableSpan]:
        if not self._accepted_of_failed:
            return spans
        out = []
        for span in spans:
            span_id = format(span.get_span_context().span_id, "016x")
            if span_id in self._accepted_of_failed:
                self._accepted_of_failed.discard(span_id)  # its retry has come: forget it
            else:
                out.append(span)
        return out

    def _remember(self, span_ids: Iterable[str]) -> None:
        if len(self._accepted_of_failed) > MAX_REMEMBERED:
            self._accepted_of_failed.clear()  # batches dead-lettered long ago: a duplicate at worst
        self._accepted_of_failed.update(span_ids)

    def shutdown(self) -> None:
        if not self._shut_down:
            self._shut_down = True
            self._client.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # nothing is buffered here


def _http_log(items: list[dict[str, Any]]) -> HTTPLog:
    # The encoder's output is plain JSON values already; the models' own type check of every nested
    # value doubled the CPU per span (bench/datadog_encode.py: ~100 us of ~240 us), for nothing.
    return HTTPLog([HTTPLogItem(**item, _check_type=False) for item in items], _check_type=False)


def failure_from_exception(exc: Exception) -> ExportFailure:
    """datadog-api-client's errors as the delivery layer's terms.

    ``ApiException`` with an HTTP status: as any HTTP answer (429/408/5xx retry, 413 splits, other
    4xx permanent), waiting for ``Retry-After`` or else Datadog's ``X-RateLimit-Reset`` (seconds).
    Status 0 is the library's wrapping of a TLS failure: retried, like any transport error, as are
    urllib3's (refused, reset, timed out).
    """
    if isinstance(exc, ApiException) and exc.status:
        headers = _lower(exc.headers)
        wait = headers.get("retry-after") or headers.get("x-ratelimit-reset")
        failure = failure_from_status(int(exc.status), _body_excerpt(exc.body), wait)
        if failure is not None:
            return failure
    if isinstance(exc, ApiException):
        return ExportFailure(retryable=True, detail=f"ApiException: {exc.reason}"[:EXCERPT], reason="TLS failed")
    if isinstance(exc, urllib3.exceptions.HTTPError):
        return ExportFailure(retryable=True, detail=f"{type(exc).__name__}: {exc}"[:EXCERPT], reason=_reason(exc))
    return unrecognised(exc)


def _reason(exc: urllib3.exceptions.HTTPError) -> str:
    """A few words for an admin, from the exception's type (urllib3 wraps the cause in MaxRetryError)."""
    cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2: test it before timeouts.
    if isinstance(cause, urllib3.exceptions.NameResolutionError):
        return "host name does not resolve"
    if isinstance(cause, urllib3.exceptions.NewConnectionError):
        return "connection refused" if "refused" in str(cause).lower() else "connection failed"
    if isinstance(cause, urllib3.exceptions.TimeoutError):
        return "timed out"
    return "connection lost"


def _lower(headers: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (headers or {}).items()}


def _body_excerpt(body: Any) -> str:
    if body is None:
        return ""
    return (body if isinstance(body, str) else json.dumps(body, default=str))[:EXCERPT]
