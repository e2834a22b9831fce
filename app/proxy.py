"""The LLM call: validate (``app.validation``), pick a deployment, forward, and record exactly one GenAI span.

The span starts before the upstream call (so the upstream HTTP span is its child) and ends when
the answer is complete: for streams, when the stream ends or the client goes away. Span end only
hands the span to the router's queues; nothing here waits on an exporter.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from app.auth import Caller
from app.config import DEFAULT_MAX_SSE_EVENT_BYTES
from app.errors import GatewayError, InvalidRequest, NotFound, PermissionDenied, UpstreamInvalidResponse, error_body
from app.pricing import PriceBook
from app.providers import Deployment, ModelRouter, upstream_error
from app.providers.mock import MockDeployment
from app.spans import (
    Attributes,
    embeddings_attributes,
    input_content_attributes,
    metadata_attributes,
    output_content_attributes,
    request_attributes,
    response_attributes,
    span_name,
    to_json,
)
from app.streaming import StreamAccumulator
from app.telemetry import GenAIMetrics
from app.validation import parse_body, validate
from contracts import semconv as sc

_decode = msgspec.json.decode
log = logging.getLogger("spangate")
_CALL_TYPES = {sc.OP_CHAT: "acompletion", sc.OP_TEXT_COMPLETION: "atext_completion", sc.OP_EMBEDDINGS: "aembedding"}


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete answer: the upstream's status and body, passed through unchanged."""

    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class StreamAnswer:
    """An open stream: send ``events()`` as SSE, then always ``close()`` (it ends the span if the
    stream never started or was cut short)."""

    relay: _StreamRelay
    headers: tuple[tuple[bytes, bytes], ...] = ((b"content-type", b"text/event-stream"),
                                                 (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"))


@dataclass(frozen=True, slots=True)
class CallContext:
    caller: Caller
    headers: Mapping[str, str]
    client_ip: str | None
    capture_content: bool


class ProxyService:
    def __init__(self, router: ModelRouter, tracer: trace.Tracer, prices: PriceBook,
                 metrics: GenAIMetrics | None, *, max_sse_event_bytes: int = DEFAULT_MAX_SSE_EVENT_BYTES) -> None:
        self._router = router
        self._max_sse_event_bytes = max_sse_event_bytes
        self._tracer = tracer
        self._prices = prices
        self._metrics = metrics
        self._mocks: dict[str, MockDeployment] = {}
        self._deployment_attrs: dict[str, Attributes] = {}

    async def handle(self, operation: str, raw: bytes, ctx: CallContext) -> Answer | StreamAnswer:
        """One call, one span, whatever happens: bad input and bugs included (a bug is a 500
        ``internal_error`` span; the exception goes on to the front door, which logs it)."""
        body: dict[str, Any] | None = None
        span: trace.Span | None = None
        started = 0.0
        try:
            body = parse_body(raw)
            validate(operation, body)
            metadata = body.pop("metadata", None) or {}
            model = body["model"]
            group = self._group(model, ctx)
            if "mock_response" in body and not group.honours_mock_response:
                raise InvalidRequest("'mock_response' is honoured only by mock/ models, unless the operator sets "
                                     "spangate_settings.allow_mock_response", param="mock_response",
                                     code="mock_response_not_allowed")
            order = group.order()
            stream = body.get("stream") is True and operation != sc.OP_EMBEDDINGS
            span = self._start_span(operation, model, order[0], body, metadata, ctx)
            started = time.perf_counter()
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                if stream:
                    return await self._stream(operation, body, group, order, span, ctx, started)
                return await self._complete(operation, body, group, order, span, ctx, started)
        except GatewayError as exc:
            if span is None:
                raise self.reject(operation, body, ctx, exc) from None
            self._fail(span, exc, started)
            raise
        except BaseException as exc:  # a bug, or the client went away (CancelledError) mid-call
            internal = GatewayError(f"internal error: {type(exc).__name__}", code="internal_error")
            if span is None:
                self.reject(operation, body, ctx, internal)
            else:
                self._fail(span, internal, started)
            raise

    def _group(self, model: str, ctx: CallContext) -> Any:
        group = self._router.get(model)
        if group is None:
            # Only what this caller may use: the full list would tell a restricted key what else exists.
            names = ", ".join(n for n in self._router.names if ctx.caller.may_use(n)) or "none for this key"
            raise NotFound(f"model {model!r} is not configured on this gateway; available: {names}",
                           param="model", code="model_not_found")
        check_model_access(ctx.caller, model)
        return group

    def reject(self, operation: str, body: Mapping[str, Any] | None, ctx: CallContext,
               exc: GatewayError) -> GatewayError:
        """Bad input is still a call: record it as an ERROR span for failure destinations."""
        model = body.get("model") if isinstance(body, Mapping) else None
        attrs: Attributes = {sc.OPERATION_NAME: operation, sc.CALL_TYPE: _CALL_TYPES[operation]}
        if isinstance(model, str) and model:
            attrs[sc.REQUEST_MODEL] = model
        attrs.update(_caller_attributes(ctx))
        span = self._tracer.start_span(span_name(operation, model) if isinstance(model, str) and model else operation,
                                       context=_client_context(ctx), kind=SpanKind.CLIENT, attributes=attrs)
        self._fail(span, exc, time.perf_counter())
        return exc

    # --- span ---------------------------------------------------------------------------------

    def _start_span(self, operation: str, model: str, first: Deployment, body: dict[str, Any],
                    metadata: Mapping[str, Any], ctx: CallContext) -> trace.Span:
        attrs: Attributes = {
            sc.OPERATION_NAME: operation,
            sc.PROVIDER_NAME: first.provider_name,
            sc.REQUEST_MODEL: model,
            sc.SERVER_ADDRESS: first.server_address,
            sc.SERVER_PORT: first.server_port,
            sc.CALL_TYPE: _CALL_TYPES[operation],
            sc.MODEL_GROUP: model,
        }
        attrs.update(_caller_attributes(ctx))
        if isinstance(body.get("user"), str):
            attrs[sc.END_USER] = body["user"]
        attrs.update(request_attributes(body))
        attrs.update(metadata_attributes(metadata))
        if ctx.capture_content:
            attrs.update(input_content_attributes(operation, body))
        return self._tracer.start_span(span_name(operation, model), context=_client_context(ctx),
                                       kind=SpanKind.CLIENT, attributes=attrs)

    def _deployment_attributes(self, span: trace.Span, deployment: Deployment) -> None:
        config = deployment.config
        attrs = self._deployment_attrs.get(config.deployment_id)
        if attrs is None:  # the same for every call to this deployment: built once
            attrs = {sc.DEPLOYMENT_ID: config.deployment_id, sc.PROVIDER_NAME: deployment.provider_name,
                     sc.SERVER_ADDRESS: deployment.server_address, sc.SERVER_PORT: deployment.server_port}
            if config.model_info:
                attrs[sc.MODEL_INFO] = to_json(config.model_info)
            self._deployment_attrs[config.deployment_id] = attrs
        span.set_attributes(attrs)

    def _finish(self, span: trace.Span, deployment: Deployment, attrs: Attributes, started: float,
                ttfc: float | None = None) -> None:
        self._add_cost(deployment, attrs)
        span.set_attributes(attrs)
        span.set_status(Status(StatusCode.OK))
        self._end(span, attrs, started, ttfc)

    def _fail(self, span: trace.Span, exc: GatewayError, started: float) -> None:
        if not span.is_recording():
            return
        attrs = {sc.ERROR_TYPE: exc.error_type, sc.HTTP_STATUS_CODE: exc.status}
        span.set_attributes(attrs)
        span.set_status(Status(StatusCode.ERROR, exc.message))
        self._end(span, attrs, started, None)

    def _end(self, span: trace.Span, attrs: Attributes, started: float, ttfc: float | None) -> None:
        if self._metrics is not None:
            all_attrs = getattr(span, "attributes", None) or attrs
            self._metrics.record(all_attrs, time.perf_counter() - started, ttfc)
        span.end()

    def _add_cost(self, deployment: Deployment, attrs: Attributes) -> None:
        if sc.USAGE_INPUT_TOKENS not in attrs and sc.USAGE_OUTPUT_TOKENS not in attrs:
            return
        config = deployment.config
        model = attrs.get(sc.RESPONSE_MODEL) or config.upstream_model
        cost = self._prices.cost(config.provider, model, config.model_info, attrs.get(sc.USAGE_INPUT_TOKENS, 0),
                                 attrs.get(sc.USAGE_OUTPUT_TOKENS, 0), attrs.get(sc.USAGE_CACHE_READ_INPUT_TOKENS, 0))
        if cost is None and model != config.upstream_model:
            cost = self._prices.cost(config.provider, config.upstream_model, config.model_info,
                                     attrs.get(sc.USAGE_INPUT_TOKENS, 0), attrs.get(sc.USAGE_OUTPUT_TOKENS, 0),
                                     attrs.get(sc.USAGE_CACHE_READ_INPUT_TOKENS, 0))
        if cost is not None:
            attrs[sc.USAGE_COST] = cost

    # --- upstream -----------------------------------------------------------------------------

    def _target(self, deployment: Deployment, body: dict[str, Any]) -> tuple[Deployment, dict[str, Any]]:
        """The deployment that really answers and the payload it gets (defaults under the client's)."""
        payload = {**deployment.config.default_params, **body} if deployment.config.default_params else dict(body)
        if "mock_response" in payload and not isinstance(deployment, MockDeployment):
            mock = self._mocks.get(deployment.config.deployment_id)
            if mock is None:
                mock = self._mocks[deployment.config.deployment_id] = MockDeployment(deployment.config)
            return mock, payload
        if not isinstance(deployment, MockDeployment):
            payload.pop("mock_response", None)
        return deployment, payload

    async def _send(self, operation: str, body: dict[str, Any], group: Any, order: list[Deployment],
                    span: trace.Span, *, stream: bool) -> tuple[Deployment, Any]:
        """Try the group's deployments in order; the answer (reply or open stream) and who gave it."""
        async def attempt(deployment: Deployment) -> Any:
            target, payload = self._target(deployment, body)
            send = target.stream if stream else target.complete
            return await send(operation, payload)

        deployment, result = await group.call(attempt, lambda r: r.status, order=order)
        self._deployment_attributes(span, deployment)
        return deployment, result

    async def _complete(self, operation: str, body: dict[str, Any], group: Any, order: list[Deployment],
                        span: trace.Span, ctx: CallContext, started: float) -> Answer:
        deployment, reply = await self._send(operation, body, group, order, span, stream=False)
        if reply.status >= 400:
            raise upstream_error(reply.status, reply.body, deployment)
        try:
            answer = _decode(reply.body)
        except msgspec.DecodeError:
            raise UpstreamInvalidResponse(f"model {group.name!r} answered with invalid JSON") from None
        answer = answer if isinstance(answer, dict) else {}
        attrs = embeddings_attributes(answer) if operation == sc.OP_EMBEDDINGS else response_attributes(answer)
        if ctx.capture_content:
            attrs.update(output_content_attributes(operation, answer))
        self._finish(span, deployment, attrs, started)
        return Answer(reply.status, reply.body)

    async def _stream(self, operation: str, body: dict[str, Any], group: Any, order: list[Deployment],
                      span: trace.Span, ctx: CallContext, started: float) -> StreamAnswer:
        options = body.get("stream_options") if isinstance(body.get("stream_options"), dict) else {}
        client_wants_usage = bool(options.get("include_usage"))
        body["stream_options"] = {**options, "include_usage": True}  # usage is recorded even if not asked

        deployment, handle = await self._send(operation, body, group, order, span, stream=True)
        if handle.status >= 400:
            try:
                raw = await handle.read()
            finally:
                await handle.aclose()
            raise upstream_error(handle.status, raw, deployment)
        acc = StreamAccumulator(operation, keep_usage_chunk=client_wants_usage, capture_content=ctx.capture_content,
                                max_event_bytes=self._max_sse_event_bytes)
        relay = _StreamRelay(self, span, deployment, handle, acc, started)
        return StreamAnswer(relay)


class _StreamRelay:
    """Forwards one upstream stream and ends its span exactly once, however the stream ends."""

    def __init__(self, service: ProxyService, span: trace.Span, deployment: Deployment, handle: Any,
                 acc: StreamAccumulator, started: float) -> None:
        self._service = service
        self._span = span
        self._deployment = deployment
        self._handle = handle
        self._acc = acc
        self._started = started
        self._ttfc: float | None = None
        self._ended = False

    async def events(self) -> AsyncIterator[bytes]:
        # Kept only when the stream stops at a ``yield``: the ASGI side closed the generator or
        # cancelled its task because the client left. Every other way out names its own outcome.
        outcome = sc.STREAM_CLIENT_DISCONNECTED
        error: GatewayError | None = None
        try:
            async for chunk in self._handle.chunks():
                out = self._acc.feed(chunk)
                if out:
                    if self._ttfc is None:
                        self._ttfc = time.perf_counter() - self._started
                    yield out
                if self._acc.error is not None:
                    raise self._acc.error
            tail = self._acc.flush()
            if tail:
                yield tail
            if self._acc.error is not None:
                raise self._acc.error
            outcome = sc.STREAM_COMPLETED if self._acc.done else sc.STREAM_ENDED_WITHOUT_DONE
        except GatewayError as exc:
            outcome, error = _stream_outcome(exc), exc
            yield _error_event(exc)
        except Exception as exc:  # whatever else breaks, the client gets an error event, not a cut connection
            log.error("relaying the stream of %s failed: %s", self._deployment.config.deployment_id,
                      type(exc).__name__, exc_info=exc)
            error = UpstreamInvalidResponse(f"relaying the upstream's stream failed ({type(exc).__name__})")
            outcome = sc.STREAM_UPSTREAM_INVALID_RESPONSE
            yield _error_event(error)
        finally:
            await self._end(outcome, error)

    async def close(self) -> None:
        """Runs after the response; ends the span if the stream never started (early disconnect)."""
        await self._end(sc.STREAM_CLIENT_DISCONNECTED, None)

    async def _end(self, outcome: str, error: GatewayError | None) -> None:
        if self._ended:
            return
        self._ended = True
        with contextlib.suppress(Exception):  # releasing a broken connection must not mask the outcome
            await self._handle.aclose()
        attrs = self._acc.attributes()
        attrs[sc.STREAM_OUTCOME] = outcome
        if self._ttfc is not None:
            attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] = self._ttfc
        if error is not None:
            self._span.set_attributes(attrs)
            self._service._fail(self._span, error, self._started)
        else:
            self._service._finish(self._span, self._deployment, attrs, self._started, self._ttfc)


def _stream_outcome(exc: GatewayError) -> str:
    return sc.STREAM_UPSTREAM_INVALID_RESPONSE if isinstance(exc, UpstreamInvalidResponse) else sc.STREAM_UPSTREAM_ERROR


def _error_event(exc: GatewayError) -> bytes:
    return b"data: " + msgspec.json.encode(error_body(exc)) + b"\n\n"


def _client_context(ctx: CallContext) -> Any:
    """The client's W3C trace context, so accepted and rejected calls alike join the client's trace."""
    return propagate.extract(ctx.headers) if "traceparent" in ctx.headers else None


def _caller_attributes(ctx: CallContext) -> Attributes:
    caller = ctx.caller
    attrs: Attributes = {}
    for name, value in ((sc.TEAM_ID, caller.team_id), (sc.TEAM_ALIAS, caller.team_alias),
                        (sc.KEY_ALIAS, caller.key_alias), (sc.REQUESTER_IP, ctx.client_ip)):
        if value:
            attrs[name] = value
    if caller.key_hash:
        attrs[sc.KEY_HASH] = caller.key_hash[:16]  # enough to tell keys apart, useless as a lookup
    return attrs


# --- access and upstream errors ---------------------------------------------------------------


def check_model_access(caller: Caller, model: str) -> None:
    for allowed, whose in ((caller.models, "key"), (caller.team_models, "team")):
        if allowed and model not in allowed and "all-proxy-models" not in allowed:
            raise PermissionDenied(f"this {whose} is not allowed to use model {model!r}; allowed: "
                                   f"{', '.join(sorted(allowed))}", param="model", code="model_not_allowed")
