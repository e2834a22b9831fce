"""OpenAI-compatible upstreams (``openai/``, ``azure/``, the hosts ``app.config.providers.hosts`` names) over one
shared client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
from opentelemetry import trace

from app.calls.operations import Operation, facts
from app.calls.record import SentRequest
from app.config.provider_kind import ProviderKind
from app.config.providers import hosts
from app.config.settings import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_POOL_WAIT, DeploymentConfig
from app.errors import UpstreamBusy, UpstreamInvalidResponse, UpstreamResponseTooLarge
from app.providers.base import UpstreamReply, map_transport_error, retry_after_of
from contracts.http11 import MAX_RESPONSE_HEAD, ResponseHeadTooLarge

OPENAI_API_BASE = "https://api.openai.com/v1"
# gen_ai.provider.name: the conventions' well-known values where one exists, else the config's prefix.
_PROVIDER_NAMES = hosts.PROVIDER_NAMES
_encode = msgspec.json.encode


async def read_capped(response: httpx.Response, limit: int, where: str) -> bytes:
    """The whole body, or ``UpstreamResponseTooLarge`` as soon as it is known to be over ``limit``
    (a declared Content-Length before any byte is read). The caller closes the response, which
    drops a connection whose body was not read to its end, so nothing more of it is buffered."""
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(where, limit)
    if response.is_stream_consumed:  # built with its content (httpx.MockTransport in tests)
        if len(response.content) > limit:
            raise _too_large(where, limit)
        return response.content
    parts: list[bytes] = []
    size = 0
    # aclosing: a read stopped at the cap closes httpx's generator now, not whenever it is collected.
    async with contextlib.aclosing(response.aiter_raw()) as body:  # type: ignore[type-var]  # typed AsyncIterator
        async for part in body:
            size += len(part)
            if size > limit:
                raise _too_large(where, limit)
            parts.append(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _too_large(where: str, limit: int) -> UpstreamResponseTooLarge:
    return UpstreamResponseTooLarge(f"the answer of {where} is larger than {limit} bytes "
                                    "(spangate_settings.max_upstream_response_bytes)")


class HttpStream:
    """An open streaming answer; ``aclose`` releases the connection whatever happened."""

    def __init__(self, response: httpx.Response, on_error: Any, limit: int, where: str) -> None:
        self._response = response
        self._on_error = on_error
        self._limit = limit
        self._where = where
        self.status = response.status_code
        self.retry_after = retry_after_of(response.headers) if self.status >= 400 else None

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except httpx.HTTPError as exc:
            raise self._on_error(exc) from exc

    async def read(self) -> bytes:
        try:
            return await read_capped(self._response, self._limit, self._where)
        except httpx.HTTPError as exc:
            raise self._on_error(exc) from exc

    async def aclose(self) -> None:
        await self._response.aclose()


def serves_responses(config: DeploymentConfig, base: str) -> bool:
    """Whether ``{api_base}/responses`` is OpenAI's Responses API: ``model_info.supports_responses`` when the
    operator says (checked at start-up), else only OpenAI's own host (most compatible servers lack it)."""
    if config.kind is not ProviderKind.OPENAI:
        return False
    flag = config.model_info.get("supports_responses")
    return flag if isinstance(flag, bool) else urlsplit(base).hostname == "api.openai.com"


class OpenAICompatibleDeployment:
    def __init__(self, config: DeploymentConfig, transport: httpx.AsyncBaseTransport, *,
                 inject_traceparent: bool = False, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
                 pool_wait: float = DEFAULT_POOL_WAIT) -> None:
        self.config = config
        self._transport = transport
        self._max_response_bytes = max_response_bytes
        # Without the httpx instrumentation (a call no trace destination receives) nothing else tells
        # the upstream which trace it serves; a traceparent naming the gateway span costs one format
        # string, and the instrumentation, when it runs, replaces it with its child span's.
        self._inject_traceparent = inject_traceparent
        self.provider_name = _PROVIDER_NAMES.get(config.provider, config.provider)
        base = (config.api_base or OPENAI_API_BASE).rstrip("/")
        parts = urlsplit(base)
        self.server_address = parts.hostname or ""
        self.server_port = parts.port or (443 if parts.scheme == "https" else 80)
        self._base = base
        headers = {"content-type": "application/json", **config.headers}
        self._azure = config.kind is ProviderKind.AZURE
        if self._azure:
            if config.api_key:
                headers["api-key"] = config.api_key
        elif config.api_key:
            headers["authorization"] = f"Bearer {config.api_key}"
        self._headers = httpx.Headers(headers)
        # ``timeout`` as LiteLLM's users read it: the most a call may take. A whole answer must end
        # within it (``total``); a stream must start within it (``head``), then each wait for its
        # next bytes is bounded by it, as a stream may rightly run longer than any one call.
        # A slot of the pool is waited for briefly (``pool_wait``): calls over the per-origin cap are
        # a quick 503 (UpstreamBusy), not a wait of the whole timeout for an upstream never contacted.
        per_step = httpx.Timeout(config.timeout, connect=min(config.timeout, 10.0),
                                 pool=min(config.timeout, pool_wait)).as_dict()
        self._timeouts = {False: {**per_step, "total": config.timeout}, True: {**per_step, "head": config.timeout}}
        self._urls = {op: httpx.URL(self._url(op)) for op in Operation}
        self._where = f"model {config.model_name!r} (upstream {self.server_address})"
        self.serves_responses = serves_responses(config, base)
        self._responses_url = httpx.URL(base + "/responses")

    def sent_responses(self, body: dict[str, Any]) -> SentRequest:
        """What ``responses`` sends for ``body``: for raw-request logging."""
        return SentRequest("POST", str(self._responses_url), self._headers, body)

    async def responses(self, body: dict[str, Any]) -> UpstreamReply:
        """A Responses API body sent as it is (but for the upstream model) to ``{api_base}/responses``."""
        return await self._send_whole(self._post(self._responses_url, body, False))

    async def responses_stream(self, body: dict[str, Any]) -> HttpStream:
        """``responses`` for a body with ``stream: true``: the open stream of OpenAI's own events."""
        return await self._open(self._post(self._responses_url, body, True))

    def _url(self, operation: str) -> str:
        path = facts(operation).path
        if self._azure:
            version = self.config.api_version or "2024-10-21"
            return f"{self._base}/openai/deployments/{self.config.upstream_model}{path}?api-version={version}"
        return self._base + path

    def _request(self, operation: str, payload: dict[str, Any], stream: bool = False) -> httpx.Request:
        """Built directly, not through ``AsyncClient``: the URL, headers and timeouts are fixed per
        deployment, and the client's redirect, auth, cookie and hook layers cost ~0.2 ms a call for
        nothing a proxy wants (it must not follow redirects or keep one caller's cookies for another)."""
        return self._post(self._urls[operation], payload, stream)

    def _post(self, url: httpx.URL, payload: dict[str, Any], stream: bool) -> httpx.Request:
        payload["model"] = self.config.upstream_model
        request = httpx.Request("POST", url, content=_encode(payload), headers=self._headers,
                                extensions={"timeout": self._timeouts[stream]})
        if self._inject_traceparent:
            ctx = trace.get_current_span().get_span_context()
            if ctx.is_valid:
                request.headers["traceparent"] = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
        return request

    def sent_request(self, operation: str, payload: dict[str, Any]) -> SentRequest:
        """What ``_request`` sends for ``payload`` (after it ran): for raw-request logging."""
        return SentRequest("POST", str(self._urls[operation]), self._headers, payload)

    def _error(self, exc: httpx.HTTPError) -> Exception:
        # What only this transport raises is mapped here; the httpx family in ``map_transport_error``.
        if isinstance(exc, httpx.PoolTimeout):  # before the TimeoutException family: nothing was sent
            return UpstreamBusy(f"no connection to {self._where} was free in time ({exc}); "
                                "the upstream was not contacted")
        if isinstance(exc, ResponseHeadTooLarge):
            return UpstreamInvalidResponse(f"the answer of {self._where} has a head larger than "
                                           f"{MAX_RESPONSE_HEAD} bytes")
        return map_transport_error(exc, self.config, self.server_address)

    async def complete(self, operation: str, payload: dict[str, Any]) -> UpstreamReply:
        return await self._send_whole(self._request(operation, payload))

    async def _send_whole(self, request: httpx.Request) -> UpstreamReply:
        try:
            response = await self._transport.handle_async_request(request)
            try:
                body = await read_capped(response, self._max_response_bytes, self._where)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise self._error(exc) from exc
        retry_after = retry_after_of(response.headers) if response.status_code >= 400 else None
        return UpstreamReply(response.status_code, body, retry_after)

    async def stream(self, operation: str, payload: dict[str, Any]) -> HttpStream:
        return await self._open(self._request(operation, payload, stream=True))

    async def _open(self, request: httpx.Request) -> HttpStream:
        try:
            response = await self._transport.handle_async_request(request)
        except httpx.HTTPError as exc:
            raise self._error(exc) from exc
        return HttpStream(response, self._error, self._max_response_bytes, self._where)
