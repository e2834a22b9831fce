"""The ASGI front door: it frames bytes and hands them on; its errors are the Litestar routes' errors, byte for byte."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from litestar import Litestar, get

from app.calls.caller import Caller
from app.errors import GatewayError, InvalidRequest, PayloadTooLarge, ServiceUnavailable, UpstreamBusy
from app.gateway.front import GatewayApp
from app.gateway.proxy import CallContext
from app.server.factory import gateway_error_response

ERRORS = [
    InvalidRequest("'temperature' must be a number", param="temperature", code="invalid_type"),
    ServiceUnavailable("moderation is down", retry_after=7, code="moderation_unavailable"),
    UpstreamBusy("no connection was free"),
    GatewayError("internal error; see the gateway log", code="internal_error"),
]


def scope(method: str, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": headers or [], "client": ("127.0.0.1", 5), "server": ("127.0.0.1", 80)}


async def served(app: Any, asgi_scope: dict[str, Any], body: bytes = b"") -> list[dict[str, Any]]:
    """The ASGI messages ``app`` sends for one request of ``body`` (then a disconnect)."""
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(asgi_scope, receive, send)
    return sent


class Proxy:
    """Stands in for ProxyService: records what the door asks of it; ``refusal`` is what admission raises."""

    def __init__(self, refusal: GatewayError | None = None) -> None:
        self.refusal = refusal
        self.asked: list[tuple[Any, ...]] = []

    def admit(self, headers: dict[str, str], client_ip: str | None, path: str, *,
              key_header: str | None = None) -> CallContext:
        self.asked.append(("admit", headers.get("authorization"), client_ip, path))
        if self.refusal is not None:
            raise self.refusal
        return CallContext(caller=Caller(), headers=headers, client_ip=client_ip, capture_content=True, path=path)

    def too_large(self, operation: str, ctx: CallContext) -> GatewayError:
        self.asked.append(("too_large", operation))
        return PayloadTooLarge("over the limit")

    async def handle(self, operation: str, raw: bytes, ctx: CallContext) -> Any:
        self.asked.append(("handle", operation, raw))
        raise InvalidRequest("seen")


def front_door(proxy: Proxy, max_body: int = 1024) -> GatewayApp:
    gateway = SimpleNamespace(proxy=proxy, config=SimpleNamespace(max_request_body_bytes=max_body))
    return GatewayApp(Litestar([], logging_config=None), gateway)


def litestar_raising(error: GatewayError) -> Litestar:
    @get("/admin-route")
    async def route() -> None:
        raise error

    return Litestar([route], exception_handlers={GatewayError: gateway_error_response}, logging_config=None)


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.code)
async def test_both_boundaries_send_the_same_bytes_for_the_same_error(error: GatewayError) -> None:
    raw = await served(front_door(Proxy(refusal=error)), scope("POST", "/v1/chat/completions"))
    framework = await served(litestar_raising(error), scope("GET", "/admin-route"))
    assert raw[0]["status"] == error.status
    assert [dict(m, more_body=False) for m in raw] == [dict(m, more_body=False) for m in framework]


async def test_the_door_asks_the_proxy_who_calls_before_it_reads_the_body() -> None:
    proxy = Proxy()
    await served(front_door(proxy), scope("POST", "/chat/completions/", [(b"authorization", b"Bearer k")]), b"{}")
    assert proxy.asked == [("admit", "Bearer k", "127.0.0.1", "/chat/completions/"), ("handle", "chat", b"{}")]


async def test_a_body_over_the_limit_is_the_proxys_failed_call_and_never_handled() -> None:
    proxy = Proxy()
    sent = await served(front_door(proxy, max_body=4), scope("POST", "/v1/embeddings"), b"0123456789")
    assert proxy.asked[1:] == [("too_large", "embeddings")]
    assert sent[0]["status"] == 413


async def test_a_refused_caller_never_gets_its_body_read() -> None:
    proxy = Proxy(refusal=GatewayError("no key", status=401, code="invalid_api_key"))
    sent = await served(front_door(proxy, max_body=4), scope("POST", "/v1/completions"), b"0123456789")
    assert [a[0] for a in proxy.asked] == ["admit"]
    assert sent[0]["status"] == 401
