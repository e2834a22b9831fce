"""The LLM call: admit it (key and team policy), validate (``app.gateway.validation``), pick a deployment,
run the hooks, forward, and end the call exactly once (``app.gateway.lifecycle``).

The span starts before the hooks and the upstream call (so the moderation and upstream HTTP spans
are its children) and ends when the answer is complete: for streams, when the stream ends or the
client goes away. Span end only hands the span to the router's queues, and the success and failure
hooks run in the background: nothing here waits on an exporter or a callback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from opentelemetry import trace

from app.calls.attributes import (
    MAX_CLIENT_NAME,
    bounded,
    embeddings_attributes,
    output_content_attributes,
    response_attributes,
)
from app.calls.caller import Caller
from app.calls.metrics import GenAIMetrics
from app.calls.operations import Operation
from app.calls.pricing import PriceBook
from app.calls.record import ALWAYS_MASKED_HEADERS, CallRecord, client_metadata, curl_command
from app.calls.redact import deployment_secrets, scrub
from app.config.settings import DEFAULT_MAX_SSE_EVENT_BYTES
from app.errors import (
    GatewayError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    UpstreamInvalidResponse,
)
from app.gateway.lifecycle import CallEnd, CallLifecycle
from app.gateway.relay import DialectRelay, StreamRelay
from app.gateway.spend import CallLimits
from app.gateway.sse import StreamAccumulator
from app.gateway.validation import parse_body, validate
from app.hooks.chain import NO_HOOKS, HookChain
from app.providers import Deployment, ModelRouter, upstream_error
from app.providers.mock import MockDeployment
from app.teams.auth import Authenticator, bearer_token
from app.teams.directory import TeamDirectory

_decode = msgspec.json.decode
_encode = msgspec.json.encode
log = logging.getLogger("spangate")
TOO_LARGE = "request body is larger than general_settings.max_request_body_bytes"


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete answer: the upstream's status and body, passed through unchanged (unless a hook
    replaced the response)."""

    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class StreamAnswer:
    """An open stream: send ``events()`` as SSE, then always ``close()`` (it ends the call if the
    stream never started or was cut short)."""

    relay: Any  # StreamRelay, DialectRelay, or a dialect's pass-through relay: each has events() and close()
    headers: tuple[tuple[bytes, bytes], ...] = ((b"content-type", b"text/event-stream"),
                                                 (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"))


@dataclass(frozen=True, slots=True)
class CallContext:
    caller: Caller
    headers: Mapping[str, str]
    client_ip: str | None
    capture_content: bool  # what global, team and key settings allow; a request may only narrow it
    path: str = ""


@dataclass(frozen=True, slots=True)
class Admission:
    """Who calls, and what their key and team let the call log: decided before the body is read."""

    auth: Authenticator
    teams: TeamDirectory

    def context(self, headers: Mapping[str, str], client_ip: str | None, path: str, *,
                key_header: str | None = None) -> CallContext:
        """``key_header``: one more header the key may come in (a dialect's: Anthropic's ``x-api-key``)."""
        token = bearer_token(headers)
        if token is None and key_header is not None:
            token = headers.get(key_header, "").strip() or None
        caller = self.auth.authenticate(token)
        return CallContext(caller=caller, headers=headers, client_ip=client_ip, path=path,
                           capture_content=caller.capture_content and self.teams.capture_content(caller.team_id))


class ProxyService:
    def __init__(self, router: ModelRouter, tracer: trace.Tracer, prices: PriceBook,
                 metrics: GenAIMetrics | None, *, max_sse_event_bytes: int = DEFAULT_MAX_SSE_EVENT_BYTES,
                 hooks: HookChain = NO_HOOKS, redact_headers: frozenset[str] = frozenset(),
                 admission: Admission | None = None, limits: CallLimits | None = None) -> None:
        self._router = router
        self._max_sse_event_bytes = max_sse_event_bytes
        self._calls = CallLifecycle.build(tracer, prices, metrics, hooks, limits)
        self.limits = self._calls.limits
        self._spans = self._calls.spans
        self._hooks = hooks
        self._admission = admission
        self._masked = ALWAYS_MASKED_HEADERS | redact_headers
        self._mocks: dict[str, MockDeployment] = {}

    @property
    def hooks(self) -> HookChain:
        return self._hooks

    def admit(self, headers: Mapping[str, str], client_ip: str | None, path: str, *,
              key_header: str | None = None) -> CallContext:
        """The context of a call about to be read (``AuthenticationFailed`` for a bad key): the
        front door asks before it reads the body, so a stranger's upload is never read."""
        if self._admission is None:
            raise RuntimeError("this ProxyService was built without an Admission")
        return self._admission.context(headers, client_ip, path, key_header=key_header)

    def answer_locally(self, raw: bytes, local: Callable[[dict[str, Any]], dict[str, Any]]) -> Answer:
        """A dialect's route answered from the body alone (a token count): no upstream, no span."""
        return Answer(200, _encode(local(parse_body(raw))))

    def _record(self, operation: str, ctx: CallContext) -> CallRecord:
        return CallRecord(Operation(operation), ctx.caller, ctx.headers, ctx.client_ip, path=ctx.path,
                          masked_header_names=self._masked, capture_content=ctx.capture_content)

    async def handle(self, operation: str, raw: bytes, ctx: CallContext, dialect: Any = None) -> Answer | StreamAnswer:
        """One call, one record, one span, whatever happens: bad input and bugs included (a bug is a
        500 ``internal_error`` span; the exception goes on to the front door, which logs it).

        ``dialect`` (an ``app.dialects.base.ClientDialect``): the body is in another client dialect,
        translated to chat before anything reads it; the answer, or the stream, is written back in it."""
        call = self._record(operation, ctx)
        end: CallEnd | None = None
        try:
            body = parse_body(raw)
            shape = None
            if dialect is not None:
                shape, body = _Shape(dialect, body, ctx.headers), dialect.to_chat(body)
            if isinstance(body.get("model"), str) and body["model"]:
                call.model = body["model"]  # names the span of a call that fails validation too
            validate(operation, body)
            call.metadata = client_metadata(body.pop("metadata", None) or {})
            call.request, call.model = body, body["model"]
            _privacy(call)
            group = self._group(call)
            if "mock_response" in body and not group.honours_mock_response:
                raise InvalidRequest("'mock_response' is honoured only by mock/ models, unless the operator sets "
                                     "spangate_settings.allow_mock_response", param="mock_response",
                                     code="mock_response_not_allowed")
            order = group.order()
            call.deployment = order[0]
            call.stream = body.get("stream") is True and call.operation.facts.streams
            hooked = bool(self._hooks.before)
            if call.caller.limits:  # budgets and rate limits: before the span starts, so a refusal is a rejection
                await self.limits.admit(call)
            end = self._calls.start(call, order[0], with_request=not hooked)
            with trace.use_span(end.span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                if hooked:
                    asked = _encode(call.request) if shape is not None else None
                    group, order = await self._before_upstream(call, group, order)
                    self._spans.request(call, end.span)
                    if shape is not None and _encode(call.request) != asked:
                        shape.direct = False  # what goes upstream is the hooks' chat body now
                if call.stream:
                    return await self._stream(call, group, order, end, shape)
                return await self._complete(call, group, order, end, shape)
        except GatewayError as exc:
            call.error = exc
            if end is None:
                raise self._calls.reject(call) from None
            end.fail()
            raise
        except BaseException as exc:  # a bug, or the client went away (CancelledError) mid-call
            call.error = GatewayError(f"internal error: {type(exc).__name__}", code="internal_error")
            call.exception = exc
            if end is None:
                self._calls.reject(call)
            else:
                end.fail()
            raise

    def _group(self, call: CallRecord) -> Any:
        model, caller = call.model, call.caller
        group = self._router.get(model)
        if group is None:
            # Only what this caller may use: the full list would tell a restricted key what else exists.
            names = ", ".join(n for n in self._router.names if caller.may_use(n)) or "none for this key"
            raise NotFound(f"model {bounded(model, MAX_CLIENT_NAME)!r} is not configured on this gateway; "
                           f"available: {names}", param="model", code="model_not_found")
        call.group = group.name
        check_model_access(caller, model)
        return group

    async def _before_upstream(self, call: CallRecord, group: Any, order: list[Deployment]) -> tuple[Any, Any]:
        """The hooks may change the request: it is checked again, and a changed model is resolved
        (and access-checked) again."""
        await self._hooks.before_upstream(call)
        body = call.request
        validate(call.operation, body)
        if body["model"] != call.model:
            call.model = body["model"]
            group = self._group(call)
            order = group.order()
            call.deployment = order[0]
        call.stream = body.get("stream") is True and call.operation.facts.streams
        return group, order

    def reject(self, operation: str, body: Mapping[str, Any] | None, ctx: CallContext,
               exc: GatewayError) -> GatewayError:
        """Bad input before the call could start (a body over the limit): still a failed call."""
        call = self._record(operation, ctx)
        model = body.get("model") if isinstance(body, Mapping) else None
        call.model = model if isinstance(model, str) and model else None
        call.error = exc
        return self._calls.reject(call)

    def too_large(self, operation: str, ctx: CallContext) -> GatewayError:
        """The body went over ``max_request_body_bytes`` (the front door stopped reading it)."""
        return self.reject(operation, None, ctx, PayloadTooLarge(TOO_LARGE))

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

    async def _send(self, call: CallRecord, group: Any, order: list[Deployment], span: trace.Span,
                    shape: _Shape | None = None) -> Any:
        """Try the group's deployments in order; the answer (reply or open stream). An attempt to a
        deployment that speaks the client's dialect may take the client's own body (``_Shape.pass_to``)."""
        sent: list[Any] = [None]
        stream = call.stream
        if stream:  # usage is recorded even if the client did not ask for it (not in call.request)
            options = call.request.get("stream_options")
            usage_options = {**(options if isinstance(options, dict) else {}), "include_usage": True}

        async def attempt(deployment: Deployment) -> Any:
            target, payload = self._target(deployment, call.request)
            if stream:
                payload["stream_options"] = usage_options
            if shape is not None and (passage := shape.pass_to(target)) is not None:
                target, payload = passage.deployment, passage.body
            sent[0] = (target, payload)
            call.deployment = deployment
            send = target.stream if stream else target.complete
            return await send(call.operation, payload)

        deployment, result = await group.call(attempt, lambda r: r.status, order=order)
        call.deployment = deployment
        self._spans.deployment(call, span)
        if self._hooks or call.log_raw_request:  # nobody else reads it: not built for nothing
            target, payload = sent[0]
            call.sent = target.sent_request(call.operation, payload)
        if call.log_raw_request:
            config = deployment.config
            secrets = deployment_secrets(config.api_key, config.headers, config.api_base, config.secrets)
            self._spans.raw_request(call, span, curl_command(call.sent, secrets, self._masked))
        return result

    async def _complete(self, call: CallRecord, group: Any, order: list[Deployment], end: CallEnd,
                        shape: _Shape | None = None) -> Answer:
        reply = await self._send(call, group, order, end.span, shape)
        deployment = call.deployment
        if reply.status >= 400:
            raise _failed(shape, upstream_error(reply.status, reply.body, deployment, reply.retry_after))
        try:
            answer = _decode(reply.body)
        except msgspec.DecodeError:
            raise UpstreamInvalidResponse(f"model {group.name!r} answered with invalid JSON") from None
        answer = answer if isinstance(answer, dict) else {}
        call.status, call.response = reply.status, answer
        body, replaced = reply.body, False
        if self._hooks.after:
            await self._hooks.after_upstream(call)
            if call.response is not answer:  # a hook replaced the answer: the client gets the new one
                answer = call.response if isinstance(call.response, dict) else {}
                body, replaced = _encode(answer), True
        call.usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else None
        operation = call.operation
        attrs = embeddings_attributes(answer) if operation is Operation.EMBEDDINGS else response_attributes(answer)
        if call.capture_content:
            attrs.update(output_content_attributes(operation, answer))
        if shape is not None:  # before the end: a translation that breaks fails the call like any bug
            body = shape.answer(answer, replaced)
        end.succeed(attrs)
        if end.settling is not None:  # the next call, on any instance, must see this one's spend
            await asyncio.shield(end.settling)
        return Answer(reply.status, body)

    async def _stream(self, call: CallRecord, group: Any, order: list[Deployment], end: CallEnd,
                      shape: _Shape | None = None) -> StreamAnswer:
        options = call.request.get("stream_options")
        client_wants_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        if shape is not None and self._hooks.filters:
            shape.direct = False  # moderation reads OpenAI chunks and may hold or cut them: translate
        handle = await self._send(call, group, order, end.span, shape)
        deployment = call.deployment
        if handle.status >= 400:
            try:
                raw = await handle.read()
            finally:
                await handle.aclose()
            raise _failed(shape, upstream_error(handle.status, raw, deployment, handle.retry_after))
        call.status = handle.status
        config = deployment.config
        secrets = deployment_secrets(config.api_key, config.headers, config.api_base, config.secrets)
        hooks = self._hooks
        on_chunk = (lambda chunk: hooks.stream_event(call, chunk)) if hooks.stream_events else None
        acc = StreamAccumulator(call.operation, keep_usage_chunk=client_wants_usage,
                                capture_content=call.capture_content, max_event_bytes=self._max_sse_event_bytes,
                                assemble=hooks.wants_response, on_chunk=on_chunk,
                                scrub=lambda text: scrub(text, secrets))
        filters = hooks.stream_filters(call) if hooks.filters else ()
        relay = StreamRelay(end, handle, acc, filters, hooks.wants_response)
        return StreamAnswer(relay if shape is None else shape.relay(relay))


@dataclass(slots=True)
class _Shape:
    """A call's client dialect and the client's own request, which its answer is written for."""

    dialect: Any
    request: dict[str, Any]
    headers: Mapping[str, str]
    direct: bool = True  # the request may go as it is to a deployment that speaks the dialect
    passage: Any = None  # the last attempt's pass-through (the dialect's ``passage``), None: translated

    def pass_to(self, deployment: Deployment) -> Any:
        passing = getattr(self.dialect, "passage", None)  # may refuse what only the pass-through can carry
        self.passage = passing(self.request, deployment, self.headers, self.direct) if passing else None
        return self.passage

    def answer(self, chat: dict[str, Any], replaced: bool = False) -> bytes:
        if self.passage is not None and not replaced:
            return self.passage.answer()  # the upstream's own bytes
        return _encode(self.dialect.answer(chat, self.request))

    def relay(self, relay: StreamRelay) -> Any:
        stream = self.dialect.stream(self.request)
        return DialectRelay(relay, stream) if self.passage is None else self.passage.relay(relay, stream)


def _failed(shape: _Shape | None, exc: Any) -> Any:
    """An upstream error; the upstream's own answer goes with it when it spoke the client's dialect."""
    return shape.passage.failed(exc) if shape is not None and shape.passage is not None else exc


def _privacy(call: CallRecord) -> None:
    """A request may ask for more privacy than its key and team give, never for less; it may ask
    for the raw request only while its messages may be logged."""
    metadata = call.metadata
    if not metadata:
        return
    if metadata.get("turn_off_message_logging") is True:
        call.capture_content = False
    call.log_raw_request = metadata.get("log_raw_request") is True and call.capture_content


# --- access and upstream errors ---------------------------------------------------------------


def check_model_access(caller: Caller, model: str) -> None:
    for allowed, whose in ((caller.models, "key"), (caller.team_models, "team")):
        if allowed and model not in allowed and "all-proxy-models" not in allowed:
            raise PermissionDenied(f"this {whose} is not allowed to use model {model!r}; allowed: "
                                   f"{', '.join(sorted(allowed))}", param="model", code="model_not_allowed")
