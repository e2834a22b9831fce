"""A call's end, in one place: its span (status, cost, metrics: ``app.calls.span.CallSpans``), then
the hooks' ``finished``; once per call, whichever way out the call takes.

``CallLifecycle`` is one per proxy service; it starts each call's span and hands back that call's
``CallEnd``, which the proxy ends for a complete answer and the stream relay for a stream. A call
refused before it could start (bad JSON, a body over the limit) gets an ERROR span of its own from
``reject``.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace

from app.calls.attributes import Attributes
from app.calls.metrics import GenAIMetrics
from app.calls.pricing import PriceBook
from app.calls.record import CallRecord
from app.calls.span import CallSpans, Deployment
from app.errors import GatewayError
from app.gateway.spend import CallLimits
from app.hooks.chain import HookChain


class CallEnd:
    """The end of one call. Only the first end that runs to its close counts: one that broke halfway
    (a bug in a metric) leaves the call to the ``fail`` of the proxy's error path, as before."""

    __slots__ = ("_ended", "_hooks", "_limits", "_spans", "_started", "call", "settling", "span")

    def __init__(self, spans: CallSpans, hooks: HookChain, call: CallRecord, span: trace.Span,
                 limits: CallLimits, *, started: bool = True) -> None:
        self._spans = spans
        self._hooks = hooks
        self._limits = limits
        self._started = started
        self.call = call
        self.span = span
        self._ended = False
        self.settling: Any = None  # the settlement of an admitted call's limits: awaited before its answer

    @property
    def ended(self) -> bool:
        return self._ended

    def succeed(self, attrs: Attributes) -> None:
        """A complete answer: ``attrs`` are the response's attributes."""
        if self._ended:
            return
        self._spans.finish(self.call, self.span, attrs)
        if self._hooks.success:
            self._hooks.finished(self.call)
        self._ended = True
        self.settling = self._limits.ended(self.call, self._started)

    def fail(self, attrs: Attributes | None = None) -> None:
        """``call.error`` is set: the span says it, the failure hooks get the call."""
        if self._ended:
            return
        self._spans.fail(self.call, self.span, attrs)
        if self._hooks.failure:
            self._hooks.finished(self.call)
        self._ended = True
        self.settling = self._limits.ended(self.call, self._started)

    def stream_ended(self, attrs: Attributes) -> None:
        """A stream's end, told by the relay: a failure when it left ``call.error`` set."""
        if self.call.error is not None:
            self.fail(attrs)
        else:
            self.succeed(attrs)


class CallLifecycle:
    """Starts the calls of one proxy service and gives each its ``CallEnd``."""

    def __init__(self, spans: CallSpans, hooks: HookChain, limits: CallLimits | None = None) -> None:
        self.spans = spans  # the proxy adds the attributes it learns on the way (request, deployment)
        self._hooks = hooks
        self.limits = limits or CallLimits()

    @classmethod
    def build(cls, tracer: trace.Tracer, prices: PriceBook, metrics: GenAIMetrics | None,
              hooks: HookChain, limits: CallLimits | None = None) -> CallLifecycle:
        return cls(CallSpans(tracer, prices, metrics), hooks, limits)

    def start(self, call: CallRecord, first: Deployment, *, with_request: bool) -> CallEnd:
        """An accepted call's span (``CallSpans.start``) and its end."""
        return CallEnd(self.spans, self._hooks, call, self.spans.start(call, first, with_request=with_request),
                       self.limits)

    def reject(self, call: CallRecord) -> GatewayError:
        """Bad input is still a call: an ERROR span for failure destinations, ended now; the error
        (``call.error``) is handed back for the client."""
        CallEnd(self.spans, self._hooks, call, self.spans.rejected(call), self.limits, started=False).fail()
        return call.error
