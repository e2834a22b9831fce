"""What an exporter tells the delivery layer when an export fails.

Exporters are plain ``SpanExporter``s: ``export`` returns ``FAILURE`` and never raises. The delivery
layer (``processors/delivery``) decides whether to retry, split or dead-letter a batch, and for that
it reads ``last_failure`` right after a ``FAILURE`` (each destination exports from one thread at a
time, so there is no race). An exporter that leaves it ``None`` is treated as retryable.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

from exporters.urlpolicy import DestinationRefused

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_EXCERPT = 300


@dataclass(frozen=True, slots=True)
class ExportFailure:
    """Why the last export failed, in the terms the delivery layer acts on."""

    retryable: bool
    detail: str
    status: int | None = None
    retry_after: float | None = None  # seconds, from a Retry-After header
    too_large: bool = False  # 413: split the batch and retry the halves
    # Short and safe to show an admin ("HTTP 500", "connection refused"): ``detail`` may quote the
    # destination's answer, which can be an internal service's page. Not part of equality.
    reason: str = field(default="", compare=False)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (now if now is not None else time.time()))


def failure_from_response(response: httpx.Response) -> ExportFailure | None:
    """``None`` for a 2xx answer, else the failure it means."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    excerpt = response.text[:_EXCERPT] if response.content else ""
    return ExportFailure(
        retryable=status in RETRYABLE_STATUSES or status >= 500,
        detail=f"HTTP {status}: {excerpt}".strip(),
        status=status,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
        too_large=status == 413,
        reason=f"HTTP {status}",
    )


def failure_from_exception(exc: Exception) -> ExportFailure:
    """Transport errors (refused, reset, timeouts) are retryable; anything else is a bug, not data."""
    detail = f"{type(exc).__name__}: {exc}"[:_EXCERPT]
    return ExportFailure(retryable=isinstance(exc, httpx.TransportError), detail=detail, reason=short_reason(exc))


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


def post_batch(client: httpx.Client, url: str, body: Callable[[], bytes],
               headers: Mapping[str, str]) -> ExportFailure | None:
    """One POST of an encoded batch: ``None`` when accepted, else the failure. Never raises.

    ``body`` is called inside the guard, so an encoding error is reported like a transport error
    instead of escaping ``export``.
    """
    try:
        response = client.post(url, content=body(), headers=headers)
    except Exception as exc:
        return failure_from_exception(exc)
    return failure_from_response(response)
