"""The one owner of a call's span: started from the ``CallRecord``, ended exactly once from it.

Attributes come from the record (request, deployment, response, usage, error), so the span,
the metrics and the hooks read one truth; metrics take their labels from the record too, never
back from the SDK span. Ending the span only hands it to the router's queues.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from app.calls.attributes import (
    MAX_CLIENT_NAME,
    Attributes,
    bounded,
    input_content_attributes,
    metadata_attributes,
    request_attributes,
    span_name,
    to_json,
)
from app.calls.metrics import GenAIMetrics
from app.calls.pricing import PriceBook
from app.calls.record import CallRecord
from app.config.settings import DeploymentConfig
from contracts import semconv as sc


class Deployment(Protocol):
    """What a span reads of the deployment that served a call (``app.providers.Deployment`` is one)."""

    config: DeploymentConfig
    provider_name: str
    server_address: str
    server_port: int

RAW_REQUEST = sc.metadata_key("raw_request")
UNKNOWN_MODEL = "unknown"  # the metric label of a call whose model is not configured
# What an error puts in the span's status: every failure destination gets it, once per failure.
MAX_STATUS_CHARS = 4096


class CallSpans:
    """Starts and ends the gateway spans of one worker; per-deployment attributes built once."""

    def __init__(self, tracer: trace.Tracer, prices: PriceBook, metrics: GenAIMetrics | None) -> None:
        self._tracer = tracer
        self._prices = prices
        self._metrics = metrics
        self._deployment_attrs: dict[str, Attributes] = {}

    # --- start --------------------------------------------------------------------------------

    def start(self, call: CallRecord, first: Deployment, *, with_request: bool) -> trace.Span:
        """The span of an accepted call. ``with_request``: the request's own attributes now (no
        hook can change the request); otherwise they follow in ``request``, after the hooks.
        One ``set_attributes`` costs ~10 us (the SDK checks every value): not paid twice for nothing."""
        model = bounded(call.model or "", MAX_CLIENT_NAME)
        attrs: Attributes = {
            sc.OPERATION_NAME: call.operation.value,
            sc.PROVIDER_NAME: first.provider_name,
            sc.REQUEST_MODEL: model,
            sc.SERVER_ADDRESS: first.server_address,
            sc.SERVER_PORT: first.server_port,
            sc.CALL_TYPE: call.operation.facts.call_type,
            sc.MODEL_GROUP: model,
        }
        attrs.update(caller_attributes(call))
        attrs.update(metadata_attributes(call.metadata))
        if with_request:
            attrs.update(self._request_attributes(call))
        return self._tracer.start_span(span_name(call.operation, model), context=client_context(call),
                                       kind=SpanKind.CLIENT, attributes=attrs)

    def request(self, call: CallRecord, span: trace.Span) -> None:
        span.set_attributes(self._request_attributes(call))

    @staticmethod
    def _request_attributes(call: CallRecord) -> Attributes:
        """The request as it goes upstream: parameters, end user, and the messages when allowed."""
        body = call.request or {}
        attrs = request_attributes(body)
        if isinstance(body.get("user"), str):
            attrs[sc.END_USER] = body["user"]
        if call.capture_content:
            attrs.update(input_content_attributes(call.operation, body))
        return attrs

    def rejected(self, call: CallRecord) -> trace.Span:
        """Bad input is still a call: an ERROR span for failure destinations (ended by ``fail``)."""
        model = call.model
        attrs: Attributes = {sc.OPERATION_NAME: call.operation.value, sc.CALL_TYPE: call.operation.facts.call_type}
        if model:
            attrs[sc.REQUEST_MODEL] = bounded(model, MAX_CLIENT_NAME)
        attrs.update(caller_attributes(call))
        return self._tracer.start_span(span_name(call.operation, model) if model else call.operation.value,
                                       context=client_context(call), kind=SpanKind.CLIENT, attributes=attrs)

    def deployment(self, call: CallRecord, span: trace.Span) -> None:
        deployment = call.deployment
        config = deployment.config
        attrs = self._deployment_attrs.get(config.deployment_id)
        if attrs is None:  # the same for every call to this deployment: built once
            attrs = {sc.DEPLOYMENT_ID: config.deployment_id, sc.PROVIDER_NAME: deployment.provider_name,
                     sc.SERVER_ADDRESS: deployment.server_address, sc.SERVER_PORT: deployment.server_port}
            if config.model_info:
                attrs[sc.MODEL_INFO] = to_json(config.model_info)
            self._deployment_attrs[config.deployment_id] = attrs
        span.set_attributes(attrs)

    # --- end ----------------------------------------------------------------------------------

    def finish(self, call: CallRecord, span: trace.Span, attrs: Attributes) -> None:
        """A successful call: response attributes (``attrs``), cost, then OK."""
        call.cost = self._cost(call.deployment, attrs)
        if call.cost is not None:
            attrs[sc.USAGE_COST] = call.cost
        if call.time_to_first_chunk is not None:
            attrs[sc.RESPONSE_TIME_TO_FIRST_CHUNK] = call.time_to_first_chunk
        if call.extra:
            attrs.update(call.extra)
        span.set_attributes(attrs)
        span.set_status(Status(StatusCode.OK))
        self._end(call, span, attrs)

    def fail(self, call: CallRecord, span: trace.Span, attrs: Attributes | None = None) -> None:
        if not span.is_recording():
            return
        exc = call.error
        out: Attributes = dict(attrs) if attrs else {}
        if call.extra:
            out.update(call.extra)
        out[sc.ERROR_TYPE] = exc.error_type
        out[sc.HTTP_STATUS_CODE] = exc.status
        span.set_attributes(out)
        span.set_status(Status(StatusCode.ERROR, bounded(exc.message, MAX_STATUS_CHARS)))
        self._end(call, span, out)

    def raw_request(self, call: CallRecord, span: trace.Span, curl: str) -> None:
        span.set_attribute(RAW_REQUEST, curl)

    def _end(self, call: CallRecord, span: trace.Span, attrs: Attributes) -> None:
        call.end_time = time.time()
        if self._metrics is not None:
            self._metrics.record(metric_labels(call), attrs, time.perf_counter() - call.started,
                                 call.time_to_first_chunk)
        span.end()

    def _cost(self, deployment: Deployment, attrs: Attributes) -> float | None:
        if sc.USAGE_INPUT_TOKENS not in attrs and sc.USAGE_OUTPUT_TOKENS not in attrs:
            return None
        config = deployment.config
        tokens = (attrs.get(sc.USAGE_INPUT_TOKENS, 0), attrs.get(sc.USAGE_OUTPUT_TOKENS, 0),
                  attrs.get(sc.USAGE_CACHE_READ_INPUT_TOKENS, 0))
        model = attrs.get(sc.RESPONSE_MODEL) or config.upstream_model
        cost = self._prices.cost(config.provider, model, config.model_info, *tokens)
        if cost is None and model != config.upstream_model:
            cost = self._prices.cost(config.provider, config.upstream_model, config.model_info, *tokens)
        return cost


def metric_labels(call: CallRecord) -> dict[str, Any]:
    labels: dict[str, Any] = {sc.OPERATION_NAME: call.operation.value}
    if call.deployment is not None:
        labels[sc.PROVIDER_NAME] = call.deployment.provider_name
    if call.model:  # a client's invented name would be a series of its own, kept until restart
        labels[sc.REQUEST_MODEL] = call.group if call.group == call.model else UNKNOWN_MODEL
    if call.caller.team_id:
        labels[sc.TEAM_ID] = call.caller.team_id
    if call.error is not None:
        labels[sc.ERROR_TYPE] = call.error.metric_label
    return labels


def client_context(call: CallRecord) -> Any:
    """The client's W3C trace context, so accepted and rejected calls alike join the client's trace."""
    return propagate.extract(call.headers) if "traceparent" in call.headers else None


def caller_attributes(call: CallRecord) -> Attributes:
    caller = call.caller
    attrs: Attributes = {}
    for name, value in ((sc.TEAM_ID, caller.team_id), (sc.TEAM_ALIAS, caller.team_alias),
                        (sc.KEY_ALIAS, caller.key_alias), (sc.REQUESTER_IP, call.client_ip)):
        if value:
            attrs[name] = value
    if caller.key_hash:
        attrs[sc.KEY_HASH] = caller.key_hash[:16]  # enough to tell keys apart, useless as a lookup
    return attrs
