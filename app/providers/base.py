"""What every deployment offers the gateway, and the mappings of upstream failures to gateway errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import msgspec

from app.call import SentRequest
from app.config import DeploymentConfig
from app.errors import GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from app.redact import deployment_secrets, scrub


@dataclass(frozen=True, slots=True)
class UpstreamReply:
    status: int
    body: bytes


class StreamHandle(Protocol):
    status: int

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


def upstream_error(status: int, raw: bytes, deployment: Deployment) -> UpstreamError:
    """Keep the upstream status and its error's message/type/code; scrub the deployment's secrets
    (whole or in part) first, then anything key-shaped (``app.redact``)."""
    message, kind, code, param = "", "upstream_error", None, None
    try:
        data = msgspec.json.decode(raw) if raw else None
    except msgspec.DecodeError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        kind = str(error.get("type") or kind)
        code = error.get("code") if isinstance(error.get("code"), str) else None
        param = error.get("param") if isinstance(error.get("param"), str) else None
    elif isinstance(error, str):
        message = error
    if not message:
        message = raw[:200].decode(errors="replace") if raw else f"HTTP {status}"
    config = deployment.config
    message = scrub(message, deployment_secrets(config.api_key, config.headers))
    where = f"{deployment.config.model_name} ({deployment.server_address})"
    return UpstreamError(f"upstream error from {where}: {message}", status=status, type=kind,
                         code=code or f"upstream_http_{status}", param=param)
