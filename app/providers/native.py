"""Deployments spoken in a provider's own API: the HTTP side every native provider shares.

A provider module supplies a ``Dialect`` (pure translation, and signing where the API wants it);
``NativeDeployment`` sends what it builds over the shared upstream transport and hands the rest
of the gateway OpenAI's shapes: answers as OpenAI JSON, errors as OpenAI error JSON (which
``app.providers.base.upstream_error`` then vets and scrubs as for any upstream), streams as OpenAI
SSE. So the relay, moderation, spans, hooks and callbacks see every provider alike.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from app.calls.operations import Operation
from app.calls.record import SentRequest
from app.config.settings import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_POOL_WAIT, DeploymentConfig
from app.errors import InvalidRequest, UpstreamBusy, UpstreamInvalidResponse
from app.providers.base import UpstreamReply, map_transport_error, retry_after_of
from app.providers.openai_compat import read_capped
from contracts.http11 import MAX_RESPONSE_HEAD, ResponseHeadTooLarge


@dataclass(frozen=True, slots=True)
class NativeRequest:
    url: str
    headers: Mapping[str, str] = field(repr=False)
    body: bytes
    logged: Any = None  # the body as raw-request logging shows it (decoded JSON)


class StreamTranslator(Protocol):
    """One streamed answer, native bytes in, OpenAI SSE bytes out (``data: {chunk}\\n\\n``...)."""

    def feed(self, data: bytes) -> bytes: ...

    def close(self) -> bytes:
        """What ends the stream: the last chunks (usage) and ``data: [DONE]``; called once, at its end."""


class Dialect(Protocol):
    provider_name: str  # gen_ai.provider.name
    operations: frozenset[Operation]  # what the provider serves; others are a 400

    def request(self, operation: Operation, payload: dict[str, Any], stream: bool) -> NativeRequest: ...

    def answer(self, operation: Operation, body: bytes, payload: dict[str, Any]) -> bytes:
        """A 2xx body -> OpenAI's answer JSON; ``UpstreamInvalidResponse`` when it cannot be read."""

    def error(self, status: int, body: bytes) -> bytes:
        """A 4xx/5xx body -> ``{"error": {"message", "type", "code"}}`` (scrubbed later, by the caller)."""

    def stream(self, operation: Operation, payload: dict[str, Any]) -> StreamTranslator: ...


@dataclass(frozen=True, slots=True)
class Resources:
    """What the worker hands every deployment it builds."""

    transport: httpx.AsyncBaseTransport
    inject_traceparent: bool = False
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    pool_wait: float = DEFAULT_POOL_WAIT
    # spangate_settings.upstream_proxy, for the calls a provider's library makes itself and the transport
    # does not carry (google-auth's token exchange): None, the environment's; "direct"; or a proxy URL.
    upstream_proxy: str | None = field(default=None, repr=False)


class TranslatedStream:
    """An open streaming answer; ``chunks`` are already OpenAI SSE; ``aclose`` releases the connection."""

    def __init__(self, response: httpx.Response, deployment: NativeDeployment, translator: StreamTranslator) -> None:
        self._response = response
        self._deployment = deployment
        self._translator = translator
        self.status = response.status_code
        self.retry_after = retry_after_of(response.headers) if self.status >= 400 else None

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for raw in self._response.aiter_raw():
                out = self._translator.feed(raw)
                if out:
                    yield out
        except httpx.HTTPError as exc:
            raise self._deployment.transport_error(exc) from exc
        yield self._translator.close()

    async def read(self) -> bytes:
        """An error answer's body, in OpenAI's error shape."""
        try:
            raw = await read_capped(self._response, self._deployment.max_response_bytes, self._deployment.where)
        except httpx.HTTPError as exc:
            raise self._deployment.transport_error(exc) from exc
        return self._deployment.error_body(self._response, raw)

    async def aclose(self) -> None:
        await self._response.aclose()


class NativeDeployment:
    def __init__(self, config: DeploymentConfig, dialect: Dialect, resources: Resources) -> None:
        self.config = config
        self.dialect = dialect
        self.provider_name = dialect.provider_name
        parts = urlsplit(config.api_base or "")
        self.server_address = parts.hostname or ""
        self.server_port = parts.port or (443 if parts.scheme == "https" else 80)
        self.max_response_bytes = resources.max_response_bytes
        self.where = f"model {config.model_name!r} (upstream {self.server_address})"
        self._transport = resources.transport
        # ``timeout`` as for OpenAI-compatible deployments: a whole answer within it, a stream's head within it.
        per_step = httpx.Timeout(config.timeout, connect=min(config.timeout, 10.0),
                                 pool=min(config.timeout, resources.pool_wait)).as_dict()
        self._timeouts = {False: {**per_step, "total": config.timeout}, True: {**per_step, "head": config.timeout}}

    def speaking(self, dialect: Dialect) -> NativeDeployment:
        """This deployment (its transport, timeouts, host) sending what ``dialect`` builds: a client's
        own body in the provider's API, passed through (``app.dialects.messages_native``)."""
        twin = copy.copy(self)
        twin.dialect = dialect
        return twin

    def _send(self, operation: str, payload: dict[str, Any], stream: bool) -> httpx.Request:
        op = Operation(operation)
        if op not in self.dialect.operations:
            raise InvalidRequest(f"model {self.config.model_name!r} ({self.config.provider}/) does not serve "
                                 f"{op.value}", code="unsupported_operation", param="model")
        built = self.dialect.request(op, payload, stream)
        return httpx.Request("POST", built.url, content=built.body, headers=built.headers,
                             extensions={"timeout": self._timeouts[stream]})

    def sent_request(self, operation: str, payload: dict[str, Any]) -> SentRequest:
        """What was sent, rebuilt from ``payload`` (only for raw-request logging): url, headers, body."""
        built = self.dialect.request(Operation(operation), payload, bool(payload.get("stream")))
        return SentRequest("POST", built.url, built.headers, built.logged)

    def transport_error(self, exc: httpx.HTTPError) -> Exception:
        if isinstance(exc, httpx.PoolTimeout):
            return UpstreamBusy(f"no connection to {self.where} was free in time ({exc}); "
                                "the upstream was not contacted")
        if isinstance(exc, ResponseHeadTooLarge):
            return UpstreamInvalidResponse(f"the answer of {self.where} has a head larger than "
                                           f"{MAX_RESPONSE_HEAD} bytes")
        return map_transport_error(exc, self.config, self.server_address)

    def error_body(self, response: httpx.Response, body: bytes) -> bytes:
        """The dialect's OpenAI error JSON; a provider that names the error in a header overrides this."""
        return self.dialect.error(response.status_code, body)

    async def complete(self, operation: str, payload: dict[str, Any]) -> UpstreamReply:
        request = self._send(operation, payload, stream=False)
        try:
            response = await self._transport.handle_async_request(request)
            try:
                body = await read_capped(response, self.max_response_bytes, self.where)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from exc
        if response.status_code >= 400:
            return UpstreamReply(response.status_code, self.error_body(response, body),
                                 retry_after_of(response.headers))
        return UpstreamReply(response.status_code, self.dialect.answer(Operation(operation), body, payload))

    async def stream(self, operation: str, payload: dict[str, Any]) -> TranslatedStream:
        request = self._send(operation, payload, stream=True)
        try:
            response = await self._transport.handle_async_request(request)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from exc
        return TranslatedStream(response, self, self.dialect.stream(Operation(operation), payload))
