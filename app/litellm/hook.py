"""A user's ``CustomLogger`` handler as a ``CallHook``: LiteLLM's methods mapped onto the hook points.

=============================== ================= =====================================================
handler method                  hook point        how it runs
=============================== ================= =====================================================
async_pre_call_hook             before_upstream   on the path; returns the new request, or raises: rejected
async_moderation_hook           before_upstream   on the path, after the pre-call hook; raises: rejected
log_pre_api_call                before_upstream   off the path (thread pool), request as it will be sent
async_post_call_success_hook    after_upstream    on the path, complete answers; may replace it, or raise
log_stream_event (+ async_)     on_stream_event   off the path, each chunk
log_post_api_call               on_success/failure off the path
log_success_event / async_      on_success        off the path: sync in the pool, async awaited in the task
log_failure_event / async_      on_failure        idem, with kwargs["exception"] and ["traceback_exception"]
async_post_call_failure_hook    on_failure        off the path
=============================== ================= =====================================================

``callback_hook`` builds a subclass per handler that defines only the points its methods need, so
the chain skips every point the handler does not use. The off-path methods are timed out and
counted by the chain's ``BackgroundRunner`` under the callback's configured name. On-path hooks
run under the same timeout; their exceptions reject the call as LiteLLM's proxy does: an
exception with a 4xx ``status_code`` gives that status, anything else a 400, both in OpenAI's
error shape naming the callback (code ``rejected_by_callback``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from app.calls.record import CallRecord
from app.custom_logger import DualCache, ResponseObject, overridden, plain
from app.errors import GatewayError
from app.hooks.chain import DEFAULT_TIMEOUT, BackgroundRunner, CallHook
from app.litellm.kwargs import (
    HOOK_CALL_TYPES,
    api_key_auth,
    call_kwargs,
    chunk_object,
    hook_data,
    response_object,
    when,
)

log = logging.getLogger("spangate.callbacks")

REJECTED = "rejected_by_callback"
_ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                429: "rate_limit_error"}
_MESSAGE_LIMIT = 500
_MAX_STREAMS = 4096


class CustomLoggerHook(CallHook):
    """Base of the per-handler classes ``callback_hook`` makes; see the module docstring."""

    def __init__(self, name: str, handler: Any, methods: frozenset[str]) -> None:
        self.name = name
        self.handler = handler
        self.methods = methods
        self.cache = DualCache()
        self.runner: BackgroundRunner | None = None
        # Streams in flight -> their kwargs, keyed by the record's ``started`` (the logged view that
        # on_success/on_failure get is a copy, with the same value).
        self._streams: dict[float, dict[str, Any]] = {}

    def attach(self, runner: BackgroundRunner) -> None:
        self.runner = runner

    @property
    def _timeout(self) -> float:
        return self.runner.timeout if self.runner is not None else DEFAULT_TIMEOUT

    # -- on the request path ---------------------------------------------------------------------
    async def _before_upstream(self, call: CallRecord) -> None:
        call_type = HOOK_CALL_TYPES.get(call.operation, call.operation)
        if "async_pre_call_hook" in self.methods:
            data, added = hook_data(call)
            result = await self._on_path(self.handler.async_pre_call_hook, api_key_auth(call), self.cache, data,
                                         call_type)
            if isinstance(result, str):  # LiteLLM's way to refuse with a message of one's own
                raise _rejection(self.name, result, 400)
            _apply_request(call, result if isinstance(result, Mapping) else data, added)
        if "async_moderation_hook" in self.methods:
            data, _added = hook_data(call)
            await self._on_path(self.handler.async_moderation_hook, data, api_key_auth(call), call_type)
        if "log_pre_api_call" in self.methods:
            view = call.logged()
            kwargs = call_kwargs(view)
            self._background(self.handler.log_pre_api_call, view.model, kwargs["messages"], kwargs)

    async def _after_upstream(self, call: CallRecord) -> None:
        if call.response is None:
            return
        data, _added = hook_data(call)
        response = response_object(call)
        result = await self._on_path(self.handler.async_post_call_success_hook, data, api_key_auth(call), response)
        chosen = response if result is None else result
        if isinstance(chosen, Mapping) or hasattr(chosen, "model_dump"):
            answer = plain(chosen)
            if answer != call.response:  # changed in place or replaced: the client gets the new one
                call.response = answer

    async def _on_path(self, method: Callable[..., Any], *args: Any) -> Any:
        try:
            result = method(*args)
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(result, self._timeout)
            return result
        except GatewayError:
            raise
        except TimeoutError:
            log.warning("callback %s: %s still running after %.0f s; the call is refused",
                        self.name, _method_name(method), self._timeout)
            raise GatewayError(f"callback {self.name} did not answer within {self._timeout:.0f}s",
                               code="callback_timeout", status=500) from None
        except Exception as exc:
            raise self._rejected(method, exc) from None

    def _rejected(self, method: Callable[..., Any], exc: Exception) -> GatewayError:
        status = getattr(exc, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            log.info("callback %s: %s refused the call (%d)", self.name, _method_name(method), status)
        else:
            status = 400  # a bug in the hook, or a bare raise: reject, and show the operator where
            log.warning("callback %s: %s raised %s; the call is refused", self.name, _method_name(method),
                        type(exc).__name__, exc_info=exc)
        return _rejection(self.name, _message(exc), status)

    # -- off the request path --------------------------------------------------------------------
    def _stream_event(self, call: CallRecord, chunk: dict[str, Any]) -> None:
        """On the request path, per chunk: the call's kwargs are built once (its request no longer
        changes once streaming) and each chunk gets a shallow copy."""
        kwargs = self._streams.get(call.started)
        if kwargs is None:
            kwargs = self._streams[call.started] = call_kwargs(call.logged())
            if len(self._streams) > _MAX_STREAMS:  # a stream whose end never reached on_success/on_failure
                del self._streams[next(iter(self._streams))]
        response, start, now = chunk_object(call, chunk), kwargs["start_time"], when(None)
        for name in ("log_stream_event", "async_log_stream_event"):
            if name in self.methods:
                self._background(getattr(self.handler, name), dict(kwargs), response, start, now)

    async def _success(self, call: CallRecord) -> None:
        self._streams.pop(call.started, None)
        await self._logged(call, "log_post_api_call", "log_success_event", "async_log_success_event")

    async def _failure(self, call: CallRecord) -> None:
        self._streams.pop(call.started, None)
        await self._logged(call, "log_post_api_call", "log_failure_event", "async_log_failure_event")
        if "async_post_call_failure_hook" in self.methods:
            data, _added = hook_data(call)
            await self._background_async(self.handler.async_post_call_failure_hook, data,
                                         call.exception or call.error, api_key_auth(call))

    async def _logged(self, call: CallRecord, *names: str) -> None:
        """``call`` is already the ``logged()`` view; each method gets its own kwargs and response."""
        start, end = when(call.start_time), when(call.end_time)
        for name in names:
            if name in self.methods:
                await self._background_async(getattr(self.handler, name), call_kwargs(call),
                                             response_object(call), start, end)

    async def _background_async(self, method: Callable[..., Any], *args: Any) -> None:
        """Inside a runner task already: a coroutine is awaited here (under the task's timeout), plain
        functions go to the pool so they never block the event loop."""
        if inspect.iscoroutinefunction(method):
            await method(*args)
        else:
            self._background(method, *args)

    def _background(self, method: Callable[..., Any], *args: Any) -> None:
        runner = self.runner
        if runner is None:  # not in a chain: nothing to run it on (unit tests build one)
            raise RuntimeError(f"callback {self.name} is not attached to a hook chain")
        if inspect.iscoroutinefunction(method):
            runner.submit(self.name, lambda: _awaitable(method(*args)))
        else:
            runner.submit_sync(self.name, method, *args)


async def _awaitable(result: Awaitable[Any]) -> None:
    await result


# Which hook points each handler method needs.
_POINTS = {
    "before_upstream": ("async_pre_call_hook", "async_moderation_hook", "log_pre_api_call"),
    "after_upstream": ("async_post_call_success_hook",),
    "on_stream_event": ("log_stream_event", "async_log_stream_event"),
    # A handler of stream events also needs the end of each call, to forget that stream's kwargs.
    "on_success": ("log_post_api_call", "log_success_event", "async_log_success_event", "log_stream_event",
                   "async_log_stream_event"),
    "on_failure": ("log_post_api_call", "log_failure_event", "async_log_failure_event",
                   "async_post_call_failure_hook", "log_stream_event", "async_log_stream_event"),
}
_IMPLEMENTATIONS = {"before_upstream": CustomLoggerHook._before_upstream,
                    "after_upstream": CustomLoggerHook._after_upstream,
                    "on_stream_event": CustomLoggerHook._stream_event,
                    "on_success": CustomLoggerHook._success, "on_failure": CustomLoggerHook._failure}


def callback_hook(name: str, handler: Any) -> CustomLoggerHook:
    """The hook for ``handler``, defining only the points the methods it overrides need."""
    methods = overridden(handler)
    points = {point: _IMPLEMENTATIONS[point] for point, needs in _POINTS.items() if methods & set(needs)}
    cls = type(f"CustomLoggerHook[{type(handler).__name__}]", (CustomLoggerHook,), points)
    return cls(name, handler, methods)


def _apply_request(call: CallRecord, data: Mapping[str, Any], added: Mapping[str, Any]) -> None:
    """What the pre-call hook handed back becomes the request: ``metadata`` goes back to its own field
    without what was added for the hook, and LiteLLM's extra ``proxy_server_request`` is dropped."""
    request = plain(data)
    metadata = request.pop("metadata", None)
    request.pop("proxy_server_request", None)
    if isinstance(metadata, dict):
        call.metadata = {k: v for k, v in metadata.items() if k not in added or v != plain(added[k])}
    call.request = request  # a changed model is resolved (and access-checked) again by the proxy


def _rejection(name: str, message: str, status: int) -> GatewayError:
    return GatewayError(f"request rejected by callback {name}: {message}", code=REJECTED, status=status,
                        type=_ERROR_TYPES.get(status, "invalid_request_error"))


def _message(exc: BaseException) -> str:
    """What the client reads: a FastAPI-style ``detail`` ({"error": "..."} or text), else the message."""
    detail = getattr(exc, "detail", None)
    if isinstance(detail, Mapping):
        detail = detail.get("error") or detail.get("message") or detail
    text = str(detail) if detail is not None else (str(exc) or type(exc).__name__)
    return text[:_MESSAGE_LIMIT]


def _method_name(method: Callable[..., Any]) -> str:
    return getattr(method, "__name__", "hook")


__all__ = ["REJECTED", "CustomLoggerHook", "ResponseObject", "callback_hook"]
