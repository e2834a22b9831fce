"""Responses calls to OpenAI deployments that serve ``/responses``, passed through instead of a round trip
through chat (issue 23).

Which deployments do: ``app.providers.openai_compat.serves_responses`` (``model_info.supports_responses``,
by default only OpenAI's own host). The proxy asks ``passage`` per attempt, so a fallback to a deployment
that does not serve Responses is translated to chat as before. The client's body goes as it is, only
``model`` replaced and ``metadata`` left out (it is the gateway's, as on the chat route: tags, privacy
settings; OpenAI also refuses its non-string values), with the deployment's default params under it when
each has a Responses field of the same name and meaning (else translated: it would be lost). ``store``
goes as the client sent it: OpenAI then stores, or not, as it was asked.

The gateway's inside still reads chat: OpenAI's Response is read as the chat completion it amounts to
(``responses_chat``) for the span, metrics, hooks and callbacks, while the client gets OpenAI's bytes.
A stream's events go to the client as OpenAI sent them, each as soon as the relay has read its chat
chunks (``ChatChunks``); an error in it (OpenAI's ``error`` or ``response.failed``, or the gateway's own)
is a Responses ``error`` event with the gateway's scrubbed reading, and nothing after it.
What keeps the translation: a request a pre-call hook changed (what must go is its chat body), an
answer an after-upstream hook replaced (the client gets the replacement, translated), and a stream that
output moderation reads (it may hold or cut chat chunks). An upstream error is OpenAI's error JSON, which
the proxy already reads and scrubs as for chat.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec

from app.calls.record import SentRequest
from app.dialects.messages_native import EventTee, NativeRelay
from app.dialects.responses_chat import ChatChunks, chat_of_response
from app.errors import UpstreamError
from app.gateway.relay import StreamRelay
from app.providers.base import UpstreamReply
from app.providers.openai_compat import HttpStream, OpenAICompatibleDeployment

_decode = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()

# litellm_params defaults that mean the same in a Responses body (``responses_request._SAME``).
SHARED_DEFAULTS = frozenset({"temperature", "top_p", "user", "parallel_tool_calls", "service_tier",
                             "prompt_cache_key", "safety_identifier"})


def passage(request: dict[str, Any], deployment: Any, headers: Mapping[str, str], direct: bool = True,
            ) -> Passage | None:
    """The pass-through of ``request`` (the client's Responses body) to ``deployment``, or ``None``: translate
    (``direct`` false: a hook changed the request, or a stream filter reads the answer)."""
    if not direct or not isinstance(deployment, OpenAICompatibleDeployment) or not deployment.serves_responses:
        return None
    body = upstream_body(request, deployment.config.default_params)
    return None if body is None else Passage(deployment, body)


def upstream_body(request: dict[str, Any], defaults: Any) -> dict[str, Any] | None:
    """The client's body with the deployment's defaults under it, without ``metadata``; ``None`` if a
    default cannot go."""
    if any(key not in SHARED_DEFAULTS for key in defaults):
        return None
    return {**defaults, **{key: value for key, value in request.items() if key != "metadata"}}


class Passage:
    """One attempt's pass-through: the deployment speaking Responses, and what came back."""

    def __init__(self, deployment: OpenAICompatibleDeployment, body: dict[str, Any]) -> None:
        self.deployment = _SpeakingResponses(deployment, self)
        self.body = body
        self.native = b""
        self.tee: EventTee | None = None

    def answer(self) -> bytes:
        """OpenAI's 2xx Response, as it came."""
        return self.native

    def failed(self, exc: UpstreamError) -> UpstreamError:
        return exc  # OpenAI's error JSON is this dialect's own: the proxy's scrubbed reading of it is the answer

    def relay(self, relay: StreamRelay, stream: Any) -> NativeRelay:
        if self.tee is None:
            raise RuntimeError("the pass-through relay of a stream that was never opened")
        return NativeRelay(relay, self.tee, _ErrorEvent(self.tee.inner))


class _SpeakingResponses:
    """The deployment as the proxy calls it, sending the Responses body to ``/responses``: it hands the
    proxy the chat completion a 2xx Response amounts to and keeps the Response for the client."""

    def __init__(self, inner: OpenAICompatibleDeployment, passage: Passage) -> None:
        self._inner = inner
        self._passage = passage
        self.config = inner.config

    async def complete(self, operation: str, payload: dict[str, Any]) -> UpstreamReply:
        reply = await self._inner.responses(payload)
        if reply.status >= 400:
            return reply
        try:
            response = _decode.decode(reply.body)
        except msgspec.DecodeError:
            return reply  # the proxy says the upstream answered with invalid JSON
        self._passage.native = reply.body
        chat = chat_of_response(response if isinstance(response, dict) else {})
        return UpstreamReply(reply.status, _encode.encode(chat), reply.retry_after)

    def sent_request(self, operation: str, payload: dict[str, Any]) -> SentRequest:
        return self._inner.sent_responses(payload)

    async def stream(self, operation: str, payload: dict[str, Any]) -> HttpStream | _TeedStream:
        handle = await self._inner.responses_stream(payload)
        if handle.status >= 400:
            return handle  # read by the proxy as any OpenAI error answer
        self._passage.tee = EventTee(ChatChunks(), _is_failure)
        return _TeedStream(handle, self._passage.tee)


class _TeedStream:
    """The open stream as the relay reads it: chat chunks, while the tee keeps OpenAI's events."""

    def __init__(self, handle: HttpStream, tee: EventTee) -> None:
        self._handle = handle
        self._tee = tee
        self.status = handle.status
        self.retry_after = handle.retry_after

    async def chunks(self) -> AsyncIterator[bytes]:
        async for raw in self._handle.chunks():
            out = self._tee.feed(raw)
            if out:
                yield out
        yield self._tee.close()

    async def read(self) -> bytes:
        return await self._handle.read()

    async def aclose(self) -> None:
        await self._handle.aclose()


_FAILURES = frozenset({"error", "response.failed"})


def _is_failure(data: Any) -> bool:
    """OpenAI's ``error`` or ``response.failed`` event."""
    return isinstance(data, dict) and data.get("type") in _FAILURES


class _ErrorEvent:
    """Writes the Responses ``error`` event that ends a passed-through stream, numbered after OpenAI's."""

    def __init__(self, chunks: ChatChunks) -> None:
        self._chunks = chunks

    def error(self, error: dict[str, Any]) -> bytes:
        fields = {"type": "error", "sequence_number": self._chunks.sequence + 1, "code": error.get("code"),
                  "message": str(error.get("message", "")), "param": error.get("param")}
        return b"event: error\ndata: " + _encode.encode(fields) + b"\n\n"
