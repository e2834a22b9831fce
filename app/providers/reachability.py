"""``GET /health``'s check of each deployment: a TCP connection to its upstream, and nothing more.

Not a request to the paid API, nor ``GET {api_base}/models``: that would send the key, count against
the provider's rate limit, and fail on Azure bases that have no ``/models``. A connection proves DNS,
routing and a listening port; a wrong key still shows only on the first call. Mocks are always healthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.config import DeploymentConfig
from app.providers.egress import ProxyRoutes
from app.providers.openai_compat import OPENAI_API_BASE

CONNECT_TIMEOUT = 2.0  # well under a load balancer's probe timeout; an upstream slower than this is unhealthy


@dataclass(frozen=True, slots=True)
class Reachability:
    deployment: DeploymentConfig
    address: str  # host:port, never the URL (it may carry credentials)
    error: str | None = None


async def check(deployment: DeploymentConfig, proxies: ProxyRoutes | None = None,
                timeout: float = CONNECT_TIMEOUT) -> Reachability:
    """Behind an egress proxy (``upstream_proxy`` or HTTP(S)_PROXY, as calls choose it) the proxy is what
    the gateway connects to, so it is what is checked: a direct connect there would fail by design."""
    if deployment.provider == "mock":
        return Reachability(deployment, "mock")
    parts = urlsplit(deployment.api_base or OPENAI_API_BASE)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    proxy = proxies.for_origin((parts.scheme.encode(), host.encode(), port)) if proxies else None
    address = f"{host}:{port}" if proxy is None else f"{host}:{port} via proxy {proxy.host}:{proxy.port}"
    target = (host, port) if proxy is None else (proxy.host, proxy.port)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(*target), timeout)
    except TimeoutError:
        return Reachability(deployment, address, f"no connection within {timeout:g}s")
    except OSError as exc:
        return Reachability(deployment, address, _reason(exc, target[0]))
    writer.close()
    with contextlib.suppress(OSError):  # a reset after connecting still proves the port listens
        await writer.wait_closed()
    return Reachability(deployment, address)


async def check_all(deployments: list[DeploymentConfig], proxies: ProxyRoutes | None) -> list[Reachability]:
    return list(await asyncio.gather(*(check(d, proxies) for d in deployments)))


def _reason(exc: OSError, host: str) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {host}: {exc.strerror}"
    return f"cannot connect: {type(exc).__name__}"
