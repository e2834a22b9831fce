"""The httpx side of the export-failure contract (``contracts.failures``): an answer's status and an
httpx exception mapped onto ``ExportFailure``, and one guarded POST for every HTTP exporter."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import httpx

from contracts.failures import EXCERPT, ExportFailure, failure_from_status, unrecognised
from exporters.urlpolicy import DestinationRefused


def failure_from_response(response: httpx.Response) -> ExportFailure | None:
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


def post_batch(client: httpx.Client, url: str, body: Callable[[], bytes],
               headers: Mapping[str, str], timeout: float | None = None) -> ExportFailure | None:
    """One POST of an encoded batch: ``None`` when accepted, else the failure. Never raises.

    An encoding error is permanent (``encoding_failure``); what the client raises is mapped by
    ``failure_from_exception`` (transport errors retried, unknown ones retried and logged).
    ``timeout`` (seconds) replaces the client's own for this POST; ``None`` keeps the client's.
    """
    try:
        content = body()
    except Exception as exc:
        return encoding_failure(exc)
    try:
        if timeout is None:
            response = client.post(url, content=content, headers=headers)
        else:
            response = client.post(url, content=content, headers=headers, timeout=timeout)
    except Exception as exc:
        return failure_from_exception(exc)
    return failure_from_response(response)
