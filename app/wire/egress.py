"""Egress proxies for upstream calls: which proxy serves an origin, and the CONNECT tunnel to it.

The proxy for an origin is chosen as httpx chooses it: ``spangate_settings.upstream_proxy`` for
every upstream when set, else ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY`` with ``NO_PROXY``
exceptions read through httpx's own reader and matched with its URL patterns (so the rules are
exactly httpx's and curl's). ``http://`` origins are sent to the proxy in absolute form; ``https://``
origins go through a ``CONNECT`` tunnel, and TLS to the origin runs inside it, verified as usual.

Proxy credentials (``http://user:pass@proxy:3128``) become a ``Proxy-Authorization`` header sent
to the proxy only; they are never part of a message, a repr or a span.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from urllib.parse import unquote

import httpx
from httpx._utils import URLPattern, get_environment_proxies  # the rules httpx itself applies

_Key = tuple[bytes, bytes, int]
_MAX_CONNECT_HEAD = 16 * 1024


@dataclass(frozen=True, slots=True)
class Proxy:
    scheme: str
    host: str
    port: int
    authorization: bytes | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> Proxy:
        parsed = httpx.URL(url if "://" in url else f"http://{url}")
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("expected an http:// or https:// proxy URL with a host")
        auth = None
        if parsed.userinfo:
            user, _, password = parsed.userinfo.decode("ascii").partition(":")
            auth = b"Basic " + base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode())
        return cls(parsed.scheme, parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80), auth)


def proxy_mounts(upstream_proxy: str | None) -> dict[str, str | None]:
    """httpx mount patterns -> proxy URL (``None``: direct) for ``spangate_settings.upstream_proxy``:
    a URL for every origin, ``"direct"`` for none, unset for the environment's."""
    if upstream_proxy == "direct":
        return {}
    if upstream_proxy:
        return {"all://": upstream_proxy}
    return get_environment_proxies()


def client_mounts(upstream_proxy: str | None, limits: httpx.Limits) -> dict[str, httpx.BaseTransport | None]:
    """The same choice for the exporters' own (synchronous) httpx client."""
    return {pattern: None if url is None else httpx.HTTPTransport(proxy=url, limits=limits)
            for pattern, url in proxy_mounts(upstream_proxy).items()}


class ProxyRoutes:
    """Origin -> proxy (or none), decided once per origin."""

    def __init__(self, mounts: dict[str, str | None]) -> None:
        self._patterns = sorted((URLPattern(pattern), None if url is None else Proxy.parse(url))
                                for pattern, url in mounts.items())
        self._cache: dict[_Key, Proxy | None] = {}

    @classmethod
    def from_settings(cls, upstream_proxy: str | None) -> ProxyRoutes | None:
        """``None`` when no proxy applies anywhere, so the transport's direct path costs nothing."""
        mounts = proxy_mounts(upstream_proxy)
        return cls(mounts) if any(url is not None for url in mounts.values()) else None

    def for_origin(self, key: _Key) -> Proxy | None:
        if key in self._cache:
            return self._cache[key]
        scheme, host, port = key
        url = httpx.URL(scheme=scheme.decode("ascii"), host=host.decode("ascii"), port=port)
        proxy = next((proxy for pattern, proxy in self._patterns if pattern.matches(url)), None)
        self._cache[key] = proxy
        return proxy


class _TunnelHead(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT; nothing else is expected before TLS starts."""

    def __init__(self) -> None:
        self.buffer = b""
        self.status: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.status.done():
            return
        if b"\r\n\r\n" in self.buffer:
            line = self.buffer.split(b"\r\n", 1)[0].split(b" ")
            ok = len(line) >= 2 and line[0].startswith(b"HTTP/1.") and line[1].isdigit()
            self.status.set_result(int(line[1]) if ok else 0)
        elif len(self.buffer) > _MAX_CONNECT_HEAD:
            self.status.set_result(0)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.status.done():
            self.status.set_exception(httpx.ProxyError("the proxy closed the connection during CONNECT"))


async def open_tunnel(proxy: Proxy, proxy_ssl: object, key: _Key, protocol: asyncio.Protocol,
                      origin_ssl: object) -> asyncio.Transport:
    """CONNECT through ``proxy`` to ``key``'s origin, then TLS to the origin inside the tunnel."""
    loop = asyncio.get_running_loop()
    _scheme, host, port = key
    transport, head = await loop.create_connection(_TunnelHead, proxy.host, proxy.port, ssl=proxy_ssl or None,
                                                   server_hostname=proxy.host if proxy_ssl else None)
    try:
        authority = b"%b:%d" % (host, port)
        request = [b"CONNECT ", authority, b" HTTP/1.1\r\nHost: ", authority, b"\r\n"]
        if proxy.authorization:
            request += (b"Proxy-Authorization: ", proxy.authorization, b"\r\n")
        transport.write(b"".join(request) + b"\r\n")
        status = await head.status
        if not 200 <= status < 300:
            raise httpx.ProxyError(f"proxy {proxy.host}:{proxy.port} refused the tunnel"
                                   + (f" (HTTP {status})" if status else " (not an HTTP answer)"))
        if head.buffer.split(b"\r\n\r\n", 1)[1]:
            raise httpx.ProxyError(f"proxy {proxy.host}:{proxy.port} sent bytes after its CONNECT answer")
        tls = await loop.start_tls(transport, protocol, origin_ssl, server_hostname=host.decode("ascii"))
    except BaseException:
        transport.close()
        raise
    assert tls is not None
    protocol.connection_made(tls)
    return tls
