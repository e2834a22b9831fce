"""Per-process OpenTelemetry wiring: the tracer provider, the GenAI metrics and the upstream client.

Built inside each worker process (after fork) by ``create_app``; nothing here is global. Only the
upstream client is instrumented, so exporters' own HTTP never shows up as spans.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from opentelemetry.instrumentation.httpx import AsyncOpenTelemetryTransport
from opentelemetry.metrics import Meter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from app import __version__
from app.providers.egress import ProxyRoutes
from app.providers.http11 import Http11Transport
from contracts import semconv as sc

# Flattened request metadata can exceed the default 128 attributes; a call's log must not lose keys.
SPAN_LIMITS = SpanLimits(max_span_attributes=1024, max_span_attribute_length=1 << 20)
_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)


def build_resource() -> Resource:
    return Resource.create({"service.name": "spangate", "service.version": __version__,
                            "service.instance.id": f"{socket.gethostname()}-{os.getpid()}"})


def build_tracer_provider(processor: SpanProcessor, resource: Resource) -> TracerProvider:
    """Always-on sampling: a client's ``traceparent`` with sampled=0 must not switch logging off."""
    provider = TracerProvider(sampler=ALWAYS_ON, resource=resource, span_limits=SPAN_LIMITS)
    provider.add_span_processor(processor)
    return provider


def build_upstream_transport(tracer_provider: TracerProvider, *, child_spans: Callable[[], bool] | None = None,
                             max_connections: int = 1000, proxies: ProxyRoutes | None = None
                             ) -> httpx.AsyncBaseTransport:
    """One pooled transport for every upstream; only it makes child spans, and only when asked.

    The transport is ``app.providers.http11``: httpx's interface over asyncio protocols and
    httptools, chosen by measurement (bench/README.md: httpx's own pool degraded under concurrency,
    httpx-aiohttp cost ~0.3 ms per call, this ~0.1 ms). Deployments send through it directly (no
    ``AsyncClient``), so there is no shared cookie jar to carry one caller's cookies to another.

    The instrumentation's child span only ever reaches trace destinations (``otel``, a team's
    ``otlp``). ``child_spans`` says, per call, whether the call's route has one (``None``: always);
    a call nobody traces gets no span, instead of a span nobody receives.
    """
    transport = Http11Transport(max_connections=max_connections, keepalive_expiry=60.0, proxies=proxies)
    instrumented = AsyncOpenTelemetryTransport(transport, tracer_provider=tracer_provider)
    return instrumented if child_spans is None else ChildSpanSwitch(transport, instrumented, child_spans)


class ChildSpanSwitch(httpx.AsyncBaseTransport):
    """Sends through the instrumented transport when ``wanted()`` says the call is traced, else directly.

    Both share one connection pool. Teams gain and lose trace destinations at run time (the admin
    API), so this is decided per call, from the router's current table: one dictionary look-up.
    """

    def __init__(self, plain: httpx.AsyncBaseTransport, instrumented: httpx.AsyncBaseTransport,
                 wanted: Callable[[], bool]) -> None:
        self._plain = plain
        self._instrumented = instrumented
        self._wanted = wanted

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._instrumented if self._wanted() else self._plain
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._plain.aclose()  # the instrumented transport wraps this same one


class GenAIMetrics:
    """The GenAI client metrics of the semantic conventions, plus spend per team."""

    def __init__(self, meter: Meter) -> None:
        self.tokens = meter.create_histogram(sc.METRIC_TOKEN_USAGE, unit="{token}",
                                             explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS)
        self.duration = meter.create_histogram(sc.METRIC_OPERATION_DURATION, unit="s",
                                               explicit_bucket_boundaries_advisory=_DURATION_BUCKETS)
        self.first_chunk = meter.create_histogram(sc.METRIC_TIME_TO_FIRST_CHUNK, unit="s",
                                                  explicit_bucket_boundaries_advisory=_DURATION_BUCKETS)
        self.spend = meter.create_counter("spangate.spend", unit="USD")

    def record(self, attrs: Mapping[str, Any], duration: float, ttfc: float | None) -> None:
        labels = {k: attrs[k] for k in (sc.OPERATION_NAME, sc.PROVIDER_NAME, sc.REQUEST_MODEL, sc.TEAM_ID,
                                        sc.ERROR_TYPE) if k in attrs}
        self.duration.record(duration, labels)
        if ttfc is not None:
            self.first_chunk.record(ttfc, labels)
        for key, kind in ((sc.USAGE_INPUT_TOKENS, "input"), (sc.USAGE_OUTPUT_TOKENS, "output")):
            if key in attrs:
                self.tokens.record(attrs[key], {**labels, sc.TOKEN_TYPE: kind})
        if sc.USAGE_COST in attrs:
            self.spend.add(attrs[sc.USAGE_COST], labels)

