"""The httpx side of the export-failure contract (``contracts.failures``): an answer's status and an
httpx exception mapped onto ``ExportFailure``, and one guarded POST for every HTTP exporter."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Mapping, Sequence

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from contracts.failures import EXCERPT, ExportFailure, failure_from_status, unrecognised
from exporters.transport.poster import Answer, Poster, poster_for
from exporters.transport.urlpolicy import DestinationRefused

# OTLP protobuf of our spans compresses ~14x at level 1 already: at a 512-span batch level 1 took
# 1.4 ms for 25.8 KB, level 5 3.2 ms for 25.2 KB, level 9 4.4 ms for 25.2 KB. 2 % more bytes for
# less than half the CPU; the export threads share the gateway's core, the network is not scarce.
GZIP_LEVEL = 1


def failure_from_response(response: Answer) -> ExportFailure | None:
    """``None`` for a 2xx answer, else the failure its status means."""
    if 200 <= response.status_code < 300:
        return None
    excerpt = response.text[:EXCERPT] if response.content else ""
    return failure_from_status(response.status_code, excerpt, response.headers.get("retry-after"))


def failure_from_exception(exc: Exception) -> ExportFailure:
    """Transport errors (refused, reset, timeouts) are retryable; a connection the address policy
    refused is permanent (retrying cannot change the policy); anything else is ``unrecognised``."""
    detail = f"{type(exc).__name__}: {exc}"[:EXCERPT]
    if isinstance(exc, httpx.TransportError):
        return ExportFailure(retryable=True, detail=detail, reason=short_reason(exc))
    if isinstance(exc, DestinationRefused):
        return ExportFailure(retryable=False, detail=detail, reason=exc.reason)
    return unrecognised(exc)


def short_reason(exc: Exception) -> str:
    """A few words for an admin, from the exception's type: never its text, which may quote a peer."""
    if isinstance(exc, DestinationRefused):
        return exc.reason
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        if "refused" in text:
            return "connection refused"
        if "name" in text and ("resolv" in text or "known" in text or "service" in text):
            return "host name does not resolve"
        return "connection failed"
    if isinstance(exc, httpx.TransportError):
        return "connection lost"
    return f"export failed ({type(exc).__name__})"


def encoding_failure(exc: Exception) -> ExportFailure:
    """The batch itself could not be encoded: permanent, so one poisonous span cannot hold up a
    destination's queue forever (it goes to the dead-letter table, with the error, and is logged)."""
    name = type(exc).__name__
    return ExportFailure(retryable=False, detail=f"encoding failed: {name}: {exc}"[:EXCERPT],
                         reason=f"encoding failed ({name})")


def post_batch(poster: Poster, url: str, body: Callable[[], bytes],
               headers: Mapping[str, str], timeout: float | None = None,
               extra: Mapping[str, str] | None = None) -> ExportFailure | None:
    """One POST of an encoded batch: ``None`` when accepted, else the failure. Never raises.

    An encoding error is permanent (``encoding_failure``); what the client raises is mapped by
    ``failure_from_exception`` (transport errors retried, unknown ones retried and logged).
    ``timeout`` (seconds) replaces the client's own for this POST; ``None`` keeps the client's.
    ``extra`` headers are sent after ``headers`` (as if merged into them).
    """
    try:
        content = body()
    except Exception as exc:
        return encoding_failure(exc)
    # ``extra`` (headers that change per POST) goes apart, so the rest stays one cached head.
    options: dict[str, object] = {} if timeout is None else {"timeout": timeout}
    try:
        response = poster.post_answer(url, content=content, headers=dict(headers),
                                      extra=dict(extra) if extra else None, **options)
    except Exception as exc:
        return failure_from_exception(exc)
    return failure_from_response(response)


class GzipPostSpanExporter(SpanExporter):
    """One gzipped (unless ``compress=False``) POST of one encoded batch, never raising: what every
    OTLP/HTTP destination does (OTLP, Langfuse, LangSmith); a destination supplies URL, headers, encoder.

    Batching, retries, back-off and 413 splits belong to the delivery layer, which reads
    ``last_failure`` after a ``FAILURE``. The httpx client is injected (shared and pooled); whoever
    built it closes it, unless ``owns_client`` hands it to ``shutdown``.
    """

    def __init__(self, client: httpx.Client, url: str, headers: Mapping[str, str],
                 encode: Callable[[Sequence[ReadableSpan]], bytes], *, owns_client: bool = False,
                 compress: bool = True, timeout: float | None = None) -> None:
        self._client, self._url, self._encode = client, url, encode
        self._http = poster_for(client)
        self._compress, self._timeout = compress, timeout
        self._headers = {"Content-Encoding": "gzip", **headers} if compress else dict(headers)
        self._owns_client = owns_client
        self._shut_down = False
        self.last_failure: ExportFailure | None = None

    def __repr__(self) -> str:  # the headers may hold credentials: say only where data goes
        return f"{type(self).__name__}(url={self._url!r})"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shut_down:
            self.last_failure = ExportFailure(retryable=False, detail="exporter is shut down")
            return SpanExportResult.FAILURE
        if not spans:
            self.last_failure = None
            return SpanExportResult.SUCCESS
        self.last_failure = post_batch(self._http, self._url, lambda: self._body(spans), self._headers,
                                       self._timeout)
        return SpanExportResult.SUCCESS if self.last_failure is None else SpanExportResult.FAILURE

    def _body(self, spans: Sequence[ReadableSpan]) -> bytes:
        body = self._encode(spans)
        return gzip.compress(body, compresslevel=GZIP_LEVEL) if self._compress else body

    def shutdown(self) -> None:
        self._shut_down = True
        if self._owns_client:
            self._client.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # nothing is buffered here
