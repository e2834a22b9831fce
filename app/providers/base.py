"""What every deployment offers the gateway, and the one mapping of transport errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from app.config import DeploymentConfig
from app.errors import GatewayError, UpstreamTimeout, UpstreamUnavailable


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


def map_transport_error(exc: httpx.HTTPError, deployment: DeploymentConfig, host: str) -> GatewayError:
    """httpx failures -> gateway errors; the message names model and host, never a key or URL query."""
    where = f"model {deployment.model_name!r} (upstream {host})"
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
        return UpstreamUnavailable(f"could not connect to {where}: {type(exc).__name__}")
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"{where} did not answer within {deployment.timeout:g}s")
    return UpstreamUnavailable(f"connection to {where} failed: {type(exc).__name__}")
