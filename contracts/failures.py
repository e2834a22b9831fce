"""What an exporter tells the delivery layer when an export fails.

Exporters are plain ``SpanExporter``s: ``export`` returns ``FAILURE`` and never raises. The delivery
layer (``processors/delivery``) decides whether to retry, split or dead-letter a batch, and for that
it reads ``last_failure`` right after a ``FAILURE`` (each destination exports from one thread at a
time, so there is no race). An exporter that leaves it ``None`` is treated as retryable.

Each destination maps its own client's errors onto this one type (an HTTP status, botocore's
throttling codes, datadog-api-client's ``ApiException``, Sentry's rate-limit answer): retryable,
permanent (dead-lettered), too large (split), with an optional Retry-After. What no destination
recognises is retryable (``unrecognised``): an unknown error is logged and retried with backoff,
never dead-lettered without anyone having understood it.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass, field

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
EXCERPT = 300  # characters of a destination's answer kept in ``detail`` (operator-only logs)


@dataclass(frozen=True, slots=True)
class ExportFailure:
    """Why the last export failed, in the terms the delivery layer acts on."""

    retryable: bool
    detail: str
    status: int | None = None
    retry_after: float | None = None  # seconds, from a Retry-After header or the client's own hint
    too_large: bool = False  # 413 or the destination's own size limit: split the batch and retry
    # Short and safe to show an admin ("HTTP 500", "connection refused"): ``detail`` may quote the
    # destination's answer, which can be an internal service's page. Not part of equality.
    reason: str = field(default="", compare=False)


def parse_retry_after(value: str | float | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return max(0.0, float(value))
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


def failure_from_status(status: int, detail: str = "", retry_after: str | float | None = None) -> ExportFailure | None:
    """``None`` for 2xx, else what an HTTP status means: 408/425/429/5xx retry, 413 splits, other
    4xx are permanent (the destination said the data itself is wrong or the credentials are)."""
    if 200 <= status < 300:
        return None
    return ExportFailure(
        retryable=status in RETRYABLE_STATUSES or status >= 500,
        detail=f"HTTP {status}: {detail[:EXCERPT]}".strip(),
        status=status,
        retry_after=parse_retry_after(retry_after),
        too_large=status == 413,
        reason=f"HTTP {status}",
    )


def unrecognised(exc: BaseException) -> ExportFailure:
    """An exception no destination mapping knows: retried (and logged by the delivery layer)."""
    name = type(exc).__name__
    return ExportFailure(retryable=True, detail=f"{name}: {exc}"[:EXCERPT], reason=f"export failed ({name})")
