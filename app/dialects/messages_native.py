"""Messages calls to ``anthropic/`` deployments, passed through instead of a round trip through chat.

Chat has no word for ``thinking`` blocks and their signatures, ``stop_sequence``, citations or server
tool blocks: translating loses them (Claude Code with extended thinking and tools breaks). So when the
call came in on ``/v1/messages``, the attempt's deployment is ``anthropic/`` with no default params (they
are named in OpenAI's words) and no hook changed the request, the client's body goes to Anthropic as it
is, only ``model`` replaced (and ``metadata`` cut to ``user_id``, all Anthropic takes: the rest is
LiteLLM's, read by the gateway), with the client's ``anthropic-beta`` header after the operator's; and
Anthropic's answer bytes, or its events, go back as they are.

The gateway's inside still reads OpenAI's shapes: the same bytes are translated (``to_chat_completion``,
``AnthropicStream``) for the span, metrics, hooks, callbacks and moderation. An error answer goes back
as Anthropic's own status and error (its fields scrubbed as ``upstream_error`` scrubs them); an error
in the middle of a stream as an ``error`` event with the gateway's scrubbed reading of it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import msgspec

from app.calls.operations import Operation
from app.calls.redact import deployment_secrets, scrub
from app.config.provider_kind import ProviderKind
from app.config.settings import DeploymentConfig
from app.dialects.messages_answer import MessagesStream, error_body, error_type
from app.dialects.messages_request import server_block
from app.errors import InvalidRequest, UpstreamError, UpstreamInvalidResponse
from app.gateway.relay import StreamRelay
from app.providers.anthropic import AnthropicDialect, AnthropicStream, answer_bytes, error_bytes
from app.providers.native import NativeDeployment, NativeRequest
from app.providers.upstream_errors import read_error

_decode = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()
_ERROR_EVENT = b'data: {"error"'  # how the relay's OpenAI error event starts (app.gateway.relay.error_event)


def passage(request: dict[str, Any], deployment: Any, headers: Mapping[str, str], direct: bool = True,
            ) -> Passage | None:
    """The pass-through of ``request`` (the client's Messages body) to ``deployment``, or ``None``: translate
    (``direct`` false: a hook changed the request, or a stream filter reads the answer). A request with a
    server tool block cannot be translated: ``InvalidRequest``."""
    config = deployment.config
    if direct and isinstance(deployment, NativeDeployment) and config.kind is ProviderKind.ANTHROPIC \
            and not config.default_params:
        return Passage(deployment, request, headers.get("anthropic-beta"))
    found = server_block(request)
    if found is not None:
        where, kind = found
        raise InvalidRequest(f"{where} is a {kind} block, which only Anthropic reads: model "
                             f"{request.get('model')!r} takes it only as the client wrote it, to an anthropic/ "
                             "deployment with no hook changing the request (and, for streams, no moderation)",
                             param=f"{where}.type", code="unsupported_content")
    return None


def native_body(request: dict[str, Any], model: str) -> dict[str, Any]:
    body = {**request, "model": model}
    metadata = request.get("metadata")
    if isinstance(metadata, dict):
        kept = {"user_id": metadata["user_id"]} if "user_id" in metadata else {}
        if kept:
            body["metadata"] = kept
        else:
            del body["metadata"]
    return body


class Passage:
    """One attempt's pass-through: the deployment speaking the client's body, and what came back."""

    def __init__(self, deployment: NativeDeployment, request: dict[str, Any], beta: str | None) -> None:
        self.dialect = _PassingDialect(deployment.config, beta)
        self.deployment = deployment.speaking(self.dialect)
        self.body = native_body(request, deployment.config.upstream_model)

    def answer(self) -> bytes:
        """Anthropic's 2xx body, as it came."""
        return self.dialect.native

    def failed(self, exc: UpstreamError) -> UpstreamError:
        exc.dialect_answer = self.dialect.failure
        return exc

    def relay(self, relay: StreamRelay, stream: MessagesStream) -> NativeRelay:
        if self.dialect.tee is None:
            raise RuntimeError("the pass-through relay of a stream that was never opened")
        return NativeRelay(relay, self.dialect.tee, stream)


class _PassingDialect(AnthropicDialect):
    """``AnthropicDialect``'s host, key and version; the body is the client's, the answers are kept."""

    def __init__(self, config: DeploymentConfig, beta: str | None) -> None:
        super().__init__(config)
        if beta:
            mine = self._headers.get("anthropic-beta")
            self._headers = {**self._headers, "anthropic-beta": f"{mine},{beta}" if mine else beta}
        self._secrets = deployment_secrets(config.api_key, config.headers, config.api_base, config.secrets)
        self.native = b""
        self.failure: tuple[int, bytes] | None = None
        self.tee: EventTee | None = None

    def request(self, operation: Operation, payload: dict[str, Any], stream: bool) -> NativeRequest:
        return NativeRequest(self._url, self._headers, _encode.encode(payload), payload)

    def answer(self, operation: Operation, body: bytes, payload: dict[str, Any]) -> bytes:
        self.native = body
        return answer_bytes(body, int(time.time()))

    def error(self, status: int, body: bytes) -> bytes:
        self.failure = status, native_error(status, body, self._secrets)
        return error_bytes(status, body)

    def stream(self, operation: Operation, payload: dict[str, Any]) -> EventTee:
        self.tee = EventTee(AnthropicStream(int(time.time()), True, self._model), is_anthropic_error)
        return self.tee


def native_error(status: int, body: bytes, secrets: tuple[str, ...]) -> bytes:
    """Anthropic's error body with only its plain fields, each bounded and scrubbed (``read_error``)."""
    try:
        data = _decode.decode(body) if body else None
    except msgspec.DecodeError:
        data = None
    data = data if isinstance(data, dict) else {}
    fields = read_error(data.get("error"), lambda text: scrub(text, secrets))
    out = error_body(error_type(status, fields.type), fields.message or f"HTTP {status}")
    request_id = data.get("request_id")
    if isinstance(request_id, str) and request_id.isascii() and len(request_id) <= 100:
        out["request_id"] = scrub(request_id, secrets)
    return _encode.encode(out)


class EventTee:
    """A stream translator (``inner``: ``feed``, ``close``, ``failed``) that also keeps the native bytes
    it reads, so the client can be handed whole native events in order (``NativeRelay``). Shared by the
    Messages and Responses pass-throughs; ``is_failure`` says which native event is the upstream's
    error, whose place the gateway's scrubbed reading takes."""

    def __init__(self, inner: Any, is_failure: Callable[[Any], bool]) -> None:
        self.inner = inner
        self._is_failure = is_failure
        self._held = b""
        self._failed = False

    def feed(self, data: bytes) -> bytes:
        if self._failed:
            return b""
        try:
            out = self.inner.feed(data)
        except UpstreamInvalidResponse:  # which event broke is not known: this read is dropped whole
            self._failed = True
            raise
        self._held += data
        if self.inner.failed:  # the upstream's error event: the relay writes the gateway's scrubbed reading
            self._failed = True
            self._held = self._before_failure(self._held)
        return out

    def close(self) -> bytes:
        return self.inner.close()

    def take(self) -> bytes:
        """The whole events held (the last, unfinished one stays)."""
        lf, crlf = self._held.rfind(b"\n\n"), self._held.rfind(b"\r\n\r\n")
        cut = max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)
        out, self._held = self._held[:cut], self._held[cut:]
        return out

    def rest(self) -> bytes:
        out, self._held = self._held, b""
        return out

    def _before_failure(self, held: bytes) -> bytes:
        events = held.replace(b"\r\n", b"\n").split(b"\n\n")
        for i, event in enumerate(events):
            if self._is_failure(event_data(event)):
                return b"".join(e + b"\n\n" for e in events[:i])
        return b""


def event_data(event: bytes) -> Any:
    """One SSE event's ``data`` decoded (``None`` when absent or not JSON)."""
    data = b"".join(line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:"))
    try:
        return _decode.decode(data) if data else None
    except msgspec.DecodeError:
        return None


def is_anthropic_error(data: Any) -> bool:
    return isinstance(data, dict) and data.get("type") == "error"


class NativeRelay:
    """The relay reads the translated chunks (span, hooks, moderation); the client gets the upstream's
    native events (Anthropic's, or OpenAI's Responses events), each sent as soon as the relay has read it.
    An error the relay ends with (the upstream's, or the gateway's own) is the dialect's ``error`` event,
    written by ``stream``; after it, nothing more."""

    def __init__(self, relay: StreamRelay, tee: EventTee, stream: Any) -> None:
        self._relay = relay
        self._tee = tee
        self._stream = stream  # writes the error event

    async def events(self) -> AsyncIterator[bytes]:
        events = self._relay.events()
        failed = False
        try:
            async for out in events:
                native = self._tee.take()
                if out.startswith(_ERROR_EVENT):
                    failed = True
                    native += self._stream.error(_error_of(out))
                if native:
                    yield native
            if not failed and (rest := self._tee.rest()):
                yield rest  # a stream cut short ends as Anthropic cut it
        finally:
            await events.aclose()  # the relay's ``finally`` ends the call now

    async def close(self) -> None:
        await self._relay.close()


def _error_of(event: bytes) -> dict[str, Any]:
    try:
        decoded = _decode.decode(event[5:].strip())
    except msgspec.DecodeError:
        return {}
    error = decoded.get("error") if isinstance(decoded, dict) else None
    return error if isinstance(error, dict) else {}
