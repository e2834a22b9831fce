"""``GET /health``'s check of each deployment: a TCP connection to its upstream, and nothing more.

Not a request to the paid API, nor ``GET {api_base}/models``: that would send the key, count against
the provider's rate limit, and fail on Azure bases that have no ``/models``. A connection proves DNS,
routing and a listening port; a wrong key still shows only on the first call. Mocks are always healthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.config.provider_kind import ProviderKind
from app.config.settings import DeploymentConfig
from app.providers.openai_compat import OPENAI_API_BASE
from app.wire.egress import ProxyRoutes

CONNECT_TIMEOUT = 2.0  # well under a load balancer's probe timeout; an upstream slower than this is unhealthy
# A verdict is reused this long: load balancers and dashboards probing /health every second, from
# several places, would otherwise open a connection to every upstream per probe.
CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Reachability:
    deployment: DeploymentConfig
    address: str  # host:port, never the URL (it may carry credentials)
    error: str | None = None


async def check(deployment: DeploymentConfig, proxies: ProxyRoutes | None = None,
                timeout: float = CONNECT_TIMEOUT) -> Reachability:
    """Behind an egress proxy (``upstream_proxy`` or HTTP(S)_PROXY, as calls choose it) the proxy is what
    the gateway connects to, so it is what is checked: a direct connect there would fail by design."""
    if deployment.kind is ProviderKind.MOCK:
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


class ReachabilityCache:
    """``check`` per deployment at most once per ``ttl`` seconds; probes that arrive while a check
    is running wait for that one (one connection, however many probes)."""

    def __init__(self, proxies: ProxyRoutes | None, ttl: float = CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._proxies = proxies
        self._ttl = ttl
        self._clock = clock
        self._done: dict[str, tuple[float, Reachability]] = {}
        self._running: dict[str, asyncio.Future[Reachability]] = {}
        self.connects = 0  # checks actually made (tests and the curious)

    async def check_all(self, deployments: list[DeploymentConfig]) -> list[Reachability]:
        return list(await asyncio.gather(*(self._check(d) for d in deployments)))

    async def _check(self, deployment: DeploymentConfig) -> Reachability:
        key = deployment.deployment_id
        cached = self._done.get(key)
        if cached is not None and self._clock() - cached[0] < self._ttl and cached[1].deployment == deployment:
            return cached[1]
        running = self._running.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Reachability] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            self.connects += 1
            result = await check(deployment, self._proxies)
            self._done[key] = (self._clock(), result)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            del self._running[key]


def _reason(exc: OSError, host: str) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {host}: {exc.strerror}"
    return f"cannot connect: {type(exc).__name__}"
