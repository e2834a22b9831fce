"""Each Content Safety check as a guardrail span, as semantic-conventions-genai describes one
(docs/gen-ai/gen-ai-guardrails.md, "Apply guardrail client span").

``apply_guardrail Azure AI Content Safety``, kind CLIENT, a child of the call's span:
``gen_ai.operation.name`` ``apply_guardrail``, ``gen_ai.provider.name`` ``azure.ai.content_safety``,
``gen_ai.guardrail.component.name``, ``openinference.span.kind`` ``GUARDRAIL`` (so Phoenix shows a
guardrail, not an unknown span), ``gen_ai.guardrail.source`` (``input`` or ``output``: the stage the
gateway checked, since ``text:analyze`` has no source of its own), ``server.address``/``server.port``,
and one ``gen_ai.guardrail.result`` event per category the service rated (result type ``severity``, the
severity as the value and as the risk score, the category as the risk category), as the conventions'
Azure example does. The service reports no overall verdict and the conventions forbid deriving one into
``gen_ai.guardrail.result.*``, so the gateway's own decision against its thresholds is
``spangate.guardrail.verdict``. No verdict from the service is ``error.type`` (the miss reason) and an
ERROR status. Never the text: only categories, severities and reasons.

The span is a part of the call, not a call: ``gen_ai.operation.name`` ``apply_guardrail`` is one of
``sc.TRACE_ONLY_OPERATIONS``, which the team router sends to trace destinations only.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode, Tracer

from contracts import semconv as sc

SPAN_NAME = f"{sc.OP_APPLY_GUARDRAIL} {sc.COMPONENT_AZURE_CONTENT_SAFETY}"
PASSED, BLOCKED, UNAVAILABLE, TOO_LONG = "passed", "blocked", "unavailable", "too_long"


class GuardrailSpans:
    """Starts and finishes the guardrail spans of one hook; without a tracer (a chain built outside a
    gateway) every span is the non-recording one, so the hook's code has one path."""

    def __init__(self, tracer: Tracer | None, endpoint: str) -> None:
        self._tracer = tracer
        url = urlsplit(endpoint)
        # Set at start, as the conventions ask of the attributes samplers may read.
        self._start_attrs = {sc.OPERATION_NAME: sc.OP_APPLY_GUARDRAIL,
                             sc.PROVIDER_NAME: sc.PROVIDER_AZURE_CONTENT_SAFETY,
                             sc.GUARDRAIL_COMPONENT_NAME: sc.COMPONENT_AZURE_CONTENT_SAFETY,
                             sc.OPENINFERENCE_SPAN_KIND: sc.OPENINFERENCE_GUARDRAIL,
                             sc.SERVER_ADDRESS: url.hostname or "",
                             sc.SERVER_PORT: url.port or (443 if url.scheme == "https" else 80)}

    def start(self, source: str, parent: Span | None) -> Span:
        """A check of ``source``; ``parent`` when the call's span is no longer the current one (a stream's
        checks run as the relay feeds it, after the proxy has left the span's context)."""
        if self._tracer is None:
            return INVALID_SPAN
        context = trace.set_span_in_context(parent) if parent is not None else None
        return self._tracer.start_span(SPAN_NAME, context=context, kind=SpanKind.CLIENT,
                                       attributes={**self._start_attrs, sc.GUARDRAIL_SOURCE: source})


def rated(span: Span, severities: Mapping[str, int]) -> None:
    """One result event per category the service rated."""
    for category, severity in severities.items():
        span.add_event(sc.GUARDRAIL_RESULT_EVENT, {
            sc.GUARDRAIL_COMPONENT_NAME: sc.COMPONENT_AZURE_CONTENT_SAFETY,
            sc.PROVIDER_NAME: sc.PROVIDER_AZURE_CONTENT_SAFETY,
            sc.GUARDRAIL_RESULT_TYPE: sc.GUARDRAIL_RESULT_SEVERITY, sc.GUARDRAIL_RESULT_VALUE: str(severity),
            sc.GUARDRAIL_RISK_CATEGORY: category, sc.GUARDRAIL_RISK_SCORE: float(severity)})


def decided(span: Span, verdict: str, category: str | None = None) -> None:
    """The gateway's decision; a later one replaces an earlier (a part that blocks after a miss)."""
    span.set_attribute(sc.GUARDRAIL_VERDICT, verdict)
    if category is not None:
        span.set_attribute(sc.MODERATION_CATEGORY, category)


def missed(span: Span, reason: str) -> None:
    """The service gave no verdict: the guardrail operation failed, whatever the gateway then did."""
    span.set_attribute(sc.ERROR_TYPE, reason)
    span.set_status(Status(StatusCode.ERROR, reason))
