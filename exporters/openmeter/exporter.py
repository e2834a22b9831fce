"""``SpanExporter`` that sends one batch of usage events to one OpenMeter instance.

One request per ``export`` call: batching, retries, back-off and splitting on 413 belong to the
delivery layer, which reads ``last_failure`` after a ``FAILURE``. A retried batch carries the same
event ids (span ids), which OpenMeter deduplicates. The httpx client is injected and shared; it is
closed by whoever made it.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from contracts.failures import ExportFailure
from exporters.openmeter.config import OpenMeterConfig
from exporters.openmeter.encode import BATCH_CONTENT_TYPE, encode_openmeter, openmeter_events
from exporters.transport.answers import encoding_failure, post_batch
from exporters.transport.poster import poster_for

__all__ = ["OpenMeterSpanExporter"]


class OpenMeterSpanExporter(SpanExporter):
    """POSTs a CloudEvents JSON batch to ``{endpoint}/api/v1/events`` with a Bearer key; never raises."""

    def __init__(self, config: OpenMeterConfig, client: httpx.Client) -> None:
        self._url = config.events_url
        self._event_type = config.event_type
        self._http = poster_for(client)
        self._headers = {"Authorization": f"Bearer {config.api_key}", "Content-Type": BATCH_CONTENT_TYPE}
        self._shut_down = False
        self.last_failure: ExportFailure | None = None

    def __repr__(self) -> str:  # the headers hold the key; say only where data goes
        return f"OpenMeterSpanExporter(url={self._url!r}, event_type={self._event_type!r})"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shut_down:
            self.last_failure = ExportFailure(retryable=False, detail="exporter is shut down")
            return SpanExportResult.FAILURE
        try:
            events = openmeter_events(spans, self._event_type)
        except Exception as exc:
            self.last_failure = encoding_failure(exc)
            return SpanExportResult.FAILURE
        if not events:  # only failed calls in this batch: nothing to bill, nothing to send
            self.last_failure = None
            return SpanExportResult.SUCCESS
        self.last_failure = post_batch(self._http, self._url, lambda: encode_openmeter(events), self._headers)
        return SpanExportResult.FAILURE if self.last_failure else SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._shut_down = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # nothing is buffered here
