"""Egress proxies: HTTP_PROXY/HTTPS_PROXY/NO_PROXY as httpx reads them, spangate_settings.upstream_proxy,
absolute-form forwarding for http:// origins and CONNECT tunnels for https://, against a loopback proxy."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from pathlib import Path

import httpx
import pytest

from app.wire.egress import ProxyRoutes, client_mounts
from app.wire.http11 import Http11Transport
from tests.app.wire.test_http11 import Server, _self_signed, call, ok, request
from tests.support.proxy import LoopbackProxy


def test_environment_proxies_follow_httpx_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert ProxyRoutes.from_settings(None) is None  # nothing configured: the direct path, no lookups
    monkeypatch.setenv("HTTPS_PROXY", "http://u:p%40ss@proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,.corp.example,10.0.0.1")
    routes = ProxyRoutes.from_settings(None)
    assert routes is not None
    proxy = routes.for_origin((b"https", b"api.openai.com", 443))
    assert proxy is not None and (proxy.host, proxy.port) == ("proxy.internal", 3128)
    assert proxy.authorization == b"Basic " + base64.b64encode(b"u:p@ss")
    assert "p@ss" not in repr(proxy) and "cA==" not in repr(proxy)
    assert routes.for_origin((b"http", b"api.openai.com", 80)) is None  # HTTPS_PROXY is for https only
    assert routes.for_origin((b"https", b"llm.corp.example", 443)) is None
    assert routes.for_origin((b"https", b"localhost", 8443)) is None
    assert routes.for_origin((b"https", b"10.0.0.1", 443)) is None
    assert ProxyRoutes.from_settings("direct") is None  # the operator opts out of the environment's proxy
    setting = ProxyRoutes.from_settings("http://egress:8080")
    assert setting is not None and setting.for_origin((b"https", b"llm.corp.example", 443)).host == "egress"


async def test_http_origins_go_through_the_proxy_in_absolute_form_with_its_credentials() -> None:
    async with LoopbackProxy(user="gw", password="s3cret") as proxy, Server(ok()) as origin:
        transport = Http11Transport(proxies=ProxyRoutes.from_settings(proxy.url("gw:s3cret@")))
        try:
            assert await call(transport, request(origin.url())) == (200, b'{"ok": true}')
        finally:
            await transport.aclose()
    assert proxy.seen.request_lines == [f"POST http://127.0.0.1:{origin.port}/v1/chat/completions HTTP/1.1".encode()]
    assert proxy.seen.authorizations == [b"Basic " + base64.b64encode(b"gw:s3cret")]
    assert b"s3cret" not in origin.requests[0] and b"Proxy-Authorization" not in origin.requests[0]


async def test_https_origins_go_through_a_connect_tunnel_verified_end_to_end_and_reused(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    async with LoopbackProxy() as proxy, Server(ok(b'{"tls": true}')) as origin:
        origin._server.close()  # swap in a TLS listener on a fresh port: same handler, same records
        origin._server = await asyncio.start_server(origin._serve, "127.0.0.1", 0, ssl=server_ctx)
        origin.port = origin._server.sockets[0].getsockname()[1]
        url = f"https://localhost:{origin.port}/v1/chat/completions"
        trusting = Http11Transport(ssl_context=ssl.create_default_context(cafile=str(cert)),
                                   proxies=ProxyRoutes.from_settings(proxy.url()))
        default = Http11Transport(proxies=ProxyRoutes.from_settings(proxy.url()))
        try:
            assert await call(trusting, request(url)) == (200, b'{"tls": true}')
            assert await call(trusting, request(url, body=b'{"n": 2}')) == (200, b'{"tls": true}')
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await call(default, request(url))  # the tunnel does not weaken verification
        finally:
            await trusting.aclose()
            await default.aclose()
    assert proxy.seen.request_lines[:2] == [f"CONNECT localhost:{origin.port} HTTP/1.1".encode()] * 2
    assert origin.connections == 1 and len(origin.requests) == 2  # one tunnel served both calls


async def test_a_proxy_that_refuses_is_a_proxy_error_that_never_shows_the_credentials() -> None:
    async with LoopbackProxy(user="gw", password="right") as proxy:
        transport = Http11Transport(proxies=ProxyRoutes.from_settings(proxy.url("gw:wrong-pass@")))
        try:
            with pytest.raises(httpx.ProxyError) as info:
                await call(transport, request("https://localhost:9/v1/chat/completions"))
        finally:
            await transport.aclose()
    assert "407" in str(info.value) and "wrong-pass" not in str(info.value)


async def test_exporter_clients_use_the_same_proxy_choice() -> None:
    async with LoopbackProxy() as proxy, Server(ok()) as origin:
        limits = httpx.Limits(max_connections=4)
        with httpx.Client(trust_env=False, limits=limits, mounts=client_mounts(proxy.url(), limits)) as client:
            response = await asyncio.to_thread(client.post, origin.url("/api/public/otel/v1/traces"),
                                                              content=b"x")
    assert response.status_code == 200
    assert proxy.seen.request_lines == [f"POST http://127.0.0.1:{origin.port}/api/public/otel/v1/traces HTTP/1.1"
                                        .encode()]


async def test_the_gateway_sends_upstream_calls_through_spangate_settings_upstream_proxy(tmp_path: Path) -> None:
    from openai import AsyncOpenAI

    from tests.support.gateway import running_gateway
    from tests.support.upstream import FakeOpenAI

    async with LoopbackProxy(user="gw", password="pr0xy-pass") as proxy:
        with FakeOpenAI() as upstream, running_gateway({
            "model_list": [{"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o-mini",
                                                                    "api_base": upstream.api_base}}],
            "litellm_settings": {"success_callback": ["file"]},
            "spangate_settings": {"upstream_proxy": proxy.url("gw:pr0xy-pass@")},
        }, data_dir=tmp_path) as gw:
            client = AsyncOpenAI(base_url=gw.openai_base_url, api_key="unused", max_retries=0)
            answer = await client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}])
            await client.close()
            spans = gw.wait_for_spans(1)
    assert answer.choices[0].message.content
    assert proxy.seen.request_lines == [f"POST {upstream.api_base}/chat/completions HTTP/1.1".encode()]
    assert proxy.seen.authorizations == [b"Basic " + base64.b64encode(b"gw:pr0xy-pass")]
    assert "pr0xy-pass" not in json.dumps(spans)
