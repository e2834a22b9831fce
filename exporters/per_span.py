"""One POST per span, for destinations whose API takes one record per request (Athina, the generic
webhook in its default form).

The delivery layer retries a failed batch whole. Sent one span at a time, a batch that fails at its
tenth span has already delivered nine; ``SpanPoster`` remembers those (by span id, at most one
batch of them) and skips them on the retry, so a destination that has no idempotency key of its own
sees each call once. What it remembers is forgotten when a batch succeeds or is given up on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import httpx
from opentelemetry.sdk.trace import ReadableSpan

from contracts.failures import ExportFailure
from exporters.transport.answers import encoding_failure, post_batch
from exporters.transport.poster import poster_for

__all__ = ["SpanPoster", "span_hex"]


def span_hex(span: ReadableSpan) -> str:
    return format(span.get_span_context().span_id, "016x")


class SpanPoster:
    """POSTs each span of a batch in order; stops at the first failure and returns it."""

    def __init__(self, client: httpx.Client, url: str, headers: Mapping[str, str],
                 encode: Callable[[ReadableSpan], bytes], *, idempotency_header: str | None = None) -> None:
        self._http = poster_for(client)
        self._url = url
        self._headers = dict(headers)
        self._encode = encode
        self._idempotency_header = idempotency_header
        self._accepted: set[str] = set()  # span ids of the batch being retried that already got a 2xx

    def post_each(self, spans: Sequence[ReadableSpan]) -> ExportFailure | None:
        for span in spans:
            try:
                key = span_hex(span)
            except Exception as exc:  # not a span: the batch cannot be encoded
                self._accepted.clear()
                return encoding_failure(exc)
            if key in self._accepted:
                continue
            failure = post_batch(self._http, self._url, lambda s=span: self._encode(s), self._headers,
                                 extra=None if self._idempotency_header is None else {self._idempotency_header: key})
            if failure is not None:
                if not failure.retryable and not failure.too_large:
                    self._accepted.clear()  # the delivery layer dead-letters this batch: no retry to skip for
                return failure
            self._accepted.add(key)
        self._accepted.clear()
        return None
