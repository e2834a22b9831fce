"""``SpanExporter`` that sends each failed call of a batch to one Sentry project, and knows when it landed.

sentry-sdk builds the events: one ``sentry_sdk.Client`` per destination (never ``sentry_sdk.init``,
which is process-wide; no default or auto-enabled integrations, no background monitor, no spotlight).
It does not send them: its own HTTP transport queues envelopes on a background worker that drops
them when the queue is full and never says whether Sentry accepted one. The client is given
``_EnvelopeCatcher`` instead, and each envelope is POSTed here, synchronously, on the injected httpx
client (so an API-set DSN goes through the callback policy like every other destination), to
``{scheme}://{host}/api/{project}/envelope/`` with the ``X-Sentry-Auth`` header sentry-sdk would send.
An export succeeds only when Sentry accepted every envelope of the batch.

Failures: 429 waits for what ``X-Sentry-Rate-Limits`` says about error events (else ``Retry-After``,
else 60 s, as sentry-sdk does); 413 is too large; other statuses and transport errors as
``contracts.failures`` maps them. A retried batch re-sends envelopes Sentry already has: event ids are
derived from the span, so it discards the copies.

Cost (``python -m bench.sentry_encode``): ~15 us per failed span for the pure encoder, ~0.4 ms with
sentry-sdk's event processing (its serializer is most of it) and gzip, on the delivery thread, per
failed call only. Building the envelope here instead would save that, at the price of tracking Sentry's
event schema by hand; the SDK keeps the payload what Sentry expects.
"""

from __future__ import annotations

import dataclasses
import gzip
import threading
from collections.abc import Sequence
from typing import Any

import httpx
import sentry_sdk
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from sentry_sdk.consts import VERSION as SENTRY_SDK_VERSION
from sentry_sdk.consts import EndpointType
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport
from sentry_sdk.utils import Dsn

from contracts.failures import ExportFailure, parse_retry_after
from exporters.sentry_events.config import SentryConfig
from exporters.sentry_events.encode import encode_sentry
from exporters.transport.answers import encoding_failure, failure_from_exception, failure_from_response

__all__ = ["SentrySender", "SentrySpanExporter", "rate_limit_seconds"]

ENVELOPE_CONTENT_TYPE = "application/x-sentry-envelope"
DEFAULT_RATE_LIMIT_SECONDS = 60.0  # sentry-sdk's own wait after a 429 that names no time
_ERROR_CATEGORIES = frozenset({"", "error", "default"})  # limits that apply to error events


class _EnvelopeCatcher(Transport):
    """Holds what the client hands over instead of sending it; ``take`` returns and forgets it."""

    def __init__(self, dsn: str) -> None:
        super().__init__({"dsn": dsn})
        self._caught: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self._caught.append(envelope)

    def take(self) -> list[Envelope]:
        caught, self._caught = self._caught, []
        return caught


class SentrySender:
    """Events -> envelopes (sentry-sdk) -> synchronous POSTs; the httpx client is the caller's and stays open."""

    def __init__(self, config: SentryConfig, client: httpx.Client, *, release: str) -> None:
        self._http = client
        self._catcher = _EnvelopeCatcher(config.dsn)
        self._sentry = sentry_sdk.Client(
            dsn=config.dsn, transport=self._catcher, release=release, environment=config.environment,
            default_integrations=False, auto_enabling_integrations=False, enable_backpressure_handling=False,
            spotlight=False, send_client_reports=False, attach_stacktrace=False, max_breadcrumbs=0)
        auth = Dsn(config.dsn).to_auth(f"sentry.python/{SENTRY_SDK_VERSION}")
        self._url = auth.get_api_url(EndpointType.ENVELOPE)
        self._headers = {"X-Sentry-Auth": auth.to_header(), "User-Agent": str(auth.client),
                         "Content-Type": ENVELOPE_CONTENT_TYPE, "Content-Encoding": "gzip"}
        self._lock = threading.Lock()  # the catcher holds one capture at a time

    def send(self, events: list[dict[str, Any]]) -> ExportFailure | None:
        """``None`` once Sentry accepted every event; the first failure stops the rest. Never raises."""
        try:
            envelopes = self._envelopes(events)
        except Exception as exc:
            return encoding_failure(exc)
        for envelope in envelopes:
            failure = self._post(envelope)
            if failure is not None:
                return failure
        return None

    def close(self) -> None:
        self._sentry.close(timeout=0)

    def _envelopes(self, events: list[dict[str, Any]]) -> list[Envelope]:
        with self._lock:
            for event in events:
                self._sentry.capture_event(event)
            return self._catcher.take()

    def _post(self, envelope: Envelope) -> ExportFailure | None:
        try:
            body = gzip.compress(envelope.serialize(), compresslevel=6)
        except Exception as exc:
            return encoding_failure(exc)
        try:
            response = self._http.post(self._url, content=body, headers=self._headers)
        except Exception as exc:
            return failure_from_exception(exc)
        failure = failure_from_response(response)
        if failure is not None and response.status_code == 429:
            failure = dataclasses.replace(failure, retry_after=rate_limit_seconds(response.headers))
        return failure


class SentrySpanExporter(SpanExporter):
    """One Sentry project; the httpx client is the caller's (shared, pooled) and is not closed here."""

    def __init__(self, config: SentryConfig, client: httpx.Client, *, release: str) -> None:
        self._sender = SentrySender(config, client, release=release)
        self._where = f"{config.base_url} project {config.project_id}"
        self._shut_down = False
        self.last_failure: ExportFailure | None = None

    def __repr__(self) -> str:  # the sender's auth header holds the DSN's key
        return f"SentrySpanExporter({self._where})"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shut_down:
            self.last_failure = ExportFailure(retryable=False, detail="exporter is shut down")
            return SpanExportResult.FAILURE
        try:
            events = encode_sentry(spans)
        except Exception as exc:
            self.last_failure = encoding_failure(exc)
        else:
            self.last_failure = self._sender.send(events)
        return SpanExportResult.FAILURE if self.last_failure else SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._shut_down = True
        self._sender.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # nothing is buffered here


def rate_limit_seconds(headers: httpx.Headers) -> float:
    """How long Sentry asks error events to wait: the longest ``X-Sentry-Rate-Limits`` entry for the
    error category (or for all categories), else ``Retry-After``, else 60 s."""
    waits = []
    for entry in (headers.get("x-sentry-rate-limits") or "").split(","):
        seconds, _, rest = entry.strip().partition(":")
        categories = set(rest.split(":", 1)[0].split(";"))
        if seconds and categories & _ERROR_CATEGORIES:
            wait = parse_retry_after(seconds)
            if wait is not None:
                waits.append(wait)
    if waits:
        return max(waits)
    retry_after = parse_retry_after(headers.get("retry-after"))
    return DEFAULT_RATE_LIMIT_SECONDS if retry_after is None else retry_after
