"""What every deployment offers the gateway, and the mappings of upstream failures to gateway errors."""

from __future__ import annotations

import email.utils
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import msgspec

from app.calls.record import SentRequest
from app.calls.redact import deployment_secrets, scrub
from app.config.settings import DeploymentConfig
from app.errors import GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from app.providers.upstream_errors import metric_label, read_error


@dataclass(frozen=True, slots=True)
class UpstreamReply:
    status: int
    body: bytes
    retry_after: int | None = None  # an error answer's Retry-After, in seconds, passed on to the client


MAX_RETRY_AFTER = 3600  # an upstream asking for longer is told to the client as an hour


def retry_after_of(headers: httpx.Headers) -> int | None:
    """An upstream's ``Retry-After`` (delay-seconds or an HTTP-date, RFC 9110 10.2.3) as whole seconds
    from now, within 0..MAX_RETRY_AFTER; ``None`` when absent or unreadable (nothing is invented)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(int(value[:6]), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0, min(math.ceil((when - datetime.now(UTC)).total_seconds()), MAX_RETRY_AFTER))


class StreamHandle(Protocol):
    status: int
    retry_after: int | None  # an error answer's Retry-After (seconds), as UpstreamReply's

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def read(self) -> bytes: ...

    async def aclose(self) -> None: ...


class Deployment(Protocol):
    config: DeploymentConfig
    provider_name: str  # value of gen_ai.provider.name
    server_address: str
    server_port: int

    async def complete(self, operation: str, payload: dict[str, Any]) -> UpstreamReply: ...

    async def stream(self, operation: str, payload: dict[str, Any]) -> StreamHandle: ...

    def sent_request(self, operation: str, payload: dict[str, Any]) -> SentRequest:
        """What was sent for ``payload`` (after ``complete``/``stream`` used it): url, headers, body."""


def map_transport_error(exc: httpx.HTTPError, deployment: DeploymentConfig, host: str) -> GatewayError:
    """httpx failures -> gateway errors; the message names model and host, never a key or URL query."""
    where = f"model {deployment.model_name!r} (upstream {host})"
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
        return UpstreamUnavailable(f"could not connect to {where}: {type(exc).__name__}")
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"{where} did not answer within {deployment.timeout:g}s")
    return UpstreamUnavailable(f"connection to {where} failed: {type(exc).__name__}")


def upstream_error(status: int, raw: bytes, deployment: Deployment, retry_after: int | None = None) -> UpstreamError:
    """Keep the upstream status and what ``app.providers.upstream_errors`` lets through of its error object:
    every field bounded and scrubbed of the deployment's secrets (whole or in part), then of anything
    key-shaped (``app.calls.redact``); a type or code that is not a plain word becomes the gateway's own."""
    try:
        data = msgspec.json.decode(raw) if raw else None
    except msgspec.DecodeError:
        data = None
    config = deployment.config
    secrets = deployment_secrets(config.api_key, config.headers, config.api_base, config.secrets)
    fields = read_error(data.get("error") if isinstance(data, dict) else None, lambda text: scrub(text, secrets))
    message = fields.message
    if not message:
        message = scrub(raw[:200].decode(errors="replace"), secrets) if raw else f"HTTP {status}"
    where = f"{config.model_name} ({deployment.server_address})"
    error = UpstreamError(f"upstream error from {where}: {message}", status=status,
                          type=fields.type or "upstream_error", code=fields.code or f"upstream_http_{status}",
                          param=fields.param)
    error.label = metric_label(fields.code, status)
    error.retry_after = retry_after
    return error
