"""Per-process OpenTelemetry wiring: the tracer provider, the resource and the upstream client.

Built inside each worker process (after fork) by ``create_app``; nothing here is global. Only the
upstream client is instrumented, so exporters' own HTTP never shows up as spans.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

import httpx
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.instrumentation._semconv import _get_schema_url, _StabilityMode
from opentelemetry.instrumentation.httpx import AsyncOpenTelemetryTransport
from opentelemetry.instrumentation.httpx.version import __version__ as _httpx_version
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import TELEMETRY_SDK_LANGUAGE, TELEMETRY_SDK_NAME, TELEMETRY_SDK_VERSION, Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.sdk.version import __version__ as _sdk_version
from opentelemetry.trace import Tracer

from app import __version__
from app.api.prometheus import build_meter_provider
from app.config.settings import ConfigError
from app.wire.egress import ProxyRoutes
from app.wire.http11 import Http11Transport, PoolTimeoutHook
from contracts import semconv as sc
from exporters.otlp import parse_headers

# Flattened request metadata can exceed the default 128 attributes; a call's log must not lose keys.
SPAN_LIMITS = SpanLimits(max_span_attributes=1024, max_span_attribute_length=1 << 20)
_HTTPX_SCOPE = "opentelemetry.instrumentation.httpx"  # the instrumentation's own tracer name
POOL_TIMEOUTS_METRIC = "spangate.upstream.pool_timeouts"  # spangate_upstream_pool_timeouts_total{pool, ...}


def build_resource(env: Mapping[str, str]) -> Resource:
    """The resource of every span and metric, from the gateway's ``env`` (never ``os.environ``).

    ``OTEL_RESOURCE_ATTRIBUTES`` adds to and replaces the gateway's own attributes and
    ``OTEL_SERVICE_NAME`` wins over both, as the SDK specification orders them (the operator's
    word beats the code's). ``Resource.create`` is not used: it reads the process environment, and
    then passes the code's ``service.name`` over the operator's.
    """
    attributes: dict[str, Any] = {TELEMETRY_SDK_LANGUAGE: "python", TELEMETRY_SDK_NAME: "opentelemetry",
                                  TELEMETRY_SDK_VERSION: _sdk_version, sc.SERVICE_NAME: "spangate",
                                  sc.SERVICE_VERSION: __version__,
                                  sc.SERVICE_INSTANCE_ID: f"{socket.gethostname()}-{os.getpid()}"}
    attributes.update(parse_resource_attributes(env.get("OTEL_RESOURCE_ATTRIBUTES", "")))
    service_name = env.get("OTEL_SERVICE_NAME", "").strip()
    if service_name:
        attributes[sc.SERVICE_NAME] = service_name
    return Resource(attributes)


def parse_resource_attributes(value: str) -> dict[str, str]:
    """``key=value,key2=value2`` with percent-encoded values (the W3C Baggage octets the spec names).

    A malformed member stops start-up naming the variable: the spec lets an SDK drop the whole
    value with a warning, but a gateway that quietly exports under the wrong service is worse.
    """
    out: dict[str, str] = {}
    for member in value.split(","):
        if not member.strip():
            continue
        key, sep, raw = member.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"OTEL_RESOURCE_ATTRIBUTES: {member.strip()[:60]!r} is not key=value "
                              "(the format is key=value,key2=value2 with percent-encoded values)")
        out[key.strip()] = unquote(raw.strip())
    return out


def build_meters(resource: Resource, env: Mapping[str, str]) -> tuple[MeterProvider, InMemoryMetricReader]:
    """The meter provider: ``/metrics`` reads it, and so does an OTLP exporter when the operator asks."""
    return build_meter_provider(resource, *otlp_metric_readers(env))


def otlp_metric_readers(env: Mapping[str, str]) -> list[MetricReader]:
    """OTLP/HTTP metrics export when ``OTEL_METRICS_EXPORTER`` names ``otlp`` (the SDK's variable; unset
    here means none, since ``/metrics`` serves them). Every GenAI, spend, moderation and delivery metric
    carries ``spangate.team.id``, so a Collector routes each team's points to its backend. The reader
    exports from its own thread every ``OTEL_METRIC_EXPORT_INTERVAL`` ms: a call never waits on it, and a
    failed export is logged by the SDK's exporter. The standard variables are read from ``env``, the
    ``_METRICS_`` forms first; ``OTEL_EXPORTER_OTLP_ENDPOINT`` gets ``/v1/metrics`` appended, as the spec says.
    """
    if "otlp" not in {name.strip() for name in env.get("OTEL_METRICS_EXPORTER", "").split(",")}:
        return []
    endpoint = env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "").strip()
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip().rstrip("/")
    if not endpoint and not base:
        raise ConfigError("OTEL_METRICS_EXPORTER=otlp needs OTEL_EXPORTER_OTLP_METRICS_ENDPOINT or "
                          "OTEL_EXPORTER_OTLP_ENDPOINT")
    try:
        headers = parse_headers(env.get("OTEL_EXPORTER_OTLP_METRICS_HEADERS") or env.get("OTEL_EXPORTER_OTLP_HEADERS"))
    except ValueError as exc:
        raise ConfigError(f"OTEL_EXPORTER_OTLP_METRICS_HEADERS: {exc}") from None
    exporter = OTLPMetricExporter(endpoint=endpoint or f"{base}/v1/metrics", headers=headers, timeout=10,
                                  compression=Compression.Gzip)
    return [PeriodicExportingMetricReader(exporter, export_interval_millis=_export_interval(env))]


def _export_interval(env: Mapping[str, str]) -> float:
    raw = env.get("OTEL_METRIC_EXPORT_INTERVAL") or "60000"
    try:
        millis = float(raw)
    except ValueError:
        millis = -1.0
    if not millis > 0:
        raise ConfigError(f"OTEL_METRIC_EXPORT_INTERVAL must be a positive number of milliseconds, got {raw!r}")
    return millis


def sdk_disabled(env: Mapping[str, str]) -> bool:
    """``OTEL_SDK_DISABLED``: only ``true`` (any case) disables, as the specification says."""
    return env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def http_semconv_mode(env: Mapping[str, str]) -> _StabilityMode:
    """Stable HTTP names on the upstream child span; ``OTEL_SEMCONV_STABILITY_OPT_IN=http/dup`` (read from
    ``env``) also keeps the old ones for dashboards still on them."""
    opted = {s.strip() for s in env.get("OTEL_SEMCONV_STABILITY_OPT_IN", "").split(",")}
    return _StabilityMode.HTTP_DUP if "http/dup" in opted else _StabilityMode.HTTP


def build_tracer_provider(processor: SpanProcessor, resource: Resource) -> TracerProvider:
    """Always-on sampling: a client's ``traceparent`` with sampled=0 must not switch logging off."""
    provider = TracerProvider(sampler=ALWAYS_ON, resource=resource, span_limits=SPAN_LIMITS)
    provider.add_span_processor(processor)
    return provider


def gateway_tracer(tracer_provider: TracerProvider) -> Tracer:
    """The gateway's own tracer. Its scope's schema URL names the GenAI conventions its span and
    metric names follow (``sc.SCHEMA_URL``), so a backend can tell them from the v1.41 names."""
    return tracer_provider.get_tracer("spangate", __version__, schema_url=sc.SCHEMA_URL)


def build_upstream_transport(tracer_provider: TracerProvider, *, child_spans: Callable[[], bool] | None = None,
                             max_connections: int = 1000, max_per_origin: int | None = None,
                             proxies: ProxyRoutes | None = None, on_pool_timeout: PoolTimeoutHook | None = None,
                             http_semconv: _StabilityMode = _StabilityMode.HTTP) -> httpx.AsyncBaseTransport:
    """One pooled transport for every upstream; only it makes child spans, and only when asked.

    The transport is ``app.wire.http11``: httpx's interface over asyncio protocols and
    httptools, chosen by measurement (bench/README.md: httpx's own pool degraded under concurrency,
    httpx-aiohttp cost ~0.3 ms per call, this ~0.1 ms). Deployments send through it directly (no
    ``AsyncClient``), so there is no shared cookie jar to carry one caller's cookies to another.

    The instrumentation's child span only ever reaches trace destinations (``otel``, a team's
    ``otlp``). ``child_spans`` says, per call, whether the call's route has one (``None``: always);
    a call nobody traces gets no span, instead of a span nobody receives.
    """
    transport = Http11Transport(max_connections=max_connections, max_per_origin=max_per_origin,
                                keepalive_expiry=60.0, proxies=proxies, on_pool_timeout=on_pool_timeout)
    instrumented = StableHttpTransport(transport, tracer_provider=tracer_provider, mode=http_semconv)
    return instrumented if child_spans is None else ChildSpanSwitch(transport, instrumented, child_spans)


def pool_timeout_counter(meter: Meter, pool: str) -> PoolTimeoutHook:
    """Counts calls that waited in vain for a slot of ``pool`` ("deployments", "moderation"), by
    origin: the origins are the config's deployments and hook endpoints, never a client's."""
    counter = meter.create_counter(POOL_TIMEOUTS_METRIC, unit="{call}",
                                   description="Calls refused because no upstream connection was free in time")

    def count(host: str, port: int) -> None:
        counter.add(1, {"pool": pool, sc.SERVER_ADDRESS: host, sc.SERVER_PORT: port})

    return count


class StableHttpTransport(AsyncOpenTelemetryTransport):
    """The httpx instrumentation writing the stable HTTP names (``http.request.method``, ``url.full``
    with credentials redacted, ``http.response.status_code``) for this transport alone.

    The instrumentation (0.66b2) takes its mode only from ``OTEL_SEMCONV_STABILITY_OPT_IN``, read from
    ``os.environ`` once per process into a class-level table: setting it would be a process-wide
    mutation that also depends on import order, and tests run many gateways in one process. So the
    instance's mode, which every request reads, is set after construction. It is a private attribute
    of a beta package: tests/app/server/test_telemetry.py asserts the names it produces, so an upgrade that
    renames it fails there rather than silently falling back to the old names.
    """

    def __init__(self, transport: httpx.AsyncBaseTransport, *, tracer_provider: TracerProvider,
                 mode: _StabilityMode) -> None:
        super().__init__(transport, tracer_provider=tracer_provider)
        if not hasattr(self, "_sem_conv_opt_in_mode"):
            raise RuntimeError("opentelemetry-instrumentation-httpx changed: no _sem_conv_opt_in_mode to set")
        self._sem_conv_opt_in_mode = mode
        # The scope's schema URL says which names the spans use; the parent built it for the old mode.
        self._tracer = tracer_provider.get_tracer(_HTTPX_SCOPE, _httpx_version, schema_url=_get_schema_url(mode))


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
