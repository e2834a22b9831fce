"""``otel`` and ``traceloop``: OTLP to a collector, Traceloop Cloud or any OTLP backend.

HTTP/protobuf goes through our own small exporter so the delivery layer sees status codes and
``Retry-After`` (the SDK exporter retries internally, then drops); gRPC uses the SDK exporter.
``otel`` reads the standard ``OTEL_EXPORTER_OTLP_*`` variables (the ``_TRACES_`` forms win);
``traceloop`` reads Traceloop's SDK variables and, with only an API key, sends to Traceloop Cloud.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter

from exporters.encode.otlp_proto import PROTOBUF_CONTENT_TYPE, encode_otlp_traces
from exporters.plugin import DestinationType, GlobalInputs, env_vars, from_env
from exporters.transport.answers import GzipPostSpanExporter

_PROTOCOLS = ("http/protobuf", "grpc")
_COMPRESSIONS = ("gzip", "none")
_VARS = {"endpoint", "traces_endpoint", "headers", "protocol", "compression", "timeout"}
# Where Traceloop's SDK sends when only TRACELOOP_API_KEY is set (its TRACELOOP_BASE_URL default).
TRACELOOP_CLOUD = "https://api.traceloop.com"
_TRACELOOP_VARS = {"api_key", "endpoint", "headers"}
# Standard variables, each var's signal-specific name first: OTEL_EXPORTER_OTLP_TRACES_* wins (the spec).
_OTEL_ENV = {
    "headers": ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"),
    "protocol": ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
    "compression": ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"),
    "timeout": ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"),
}


def parse_headers(value: str | Mapping[str, Any] | None) -> dict[str, str]:
    """``k=v,k2=v2`` (the OTEL_EXPORTER_OTLP_HEADERS format, values URL-encoded) or a mapping."""
    if not value:
        return {}
    if isinstance(value, Mapping):
        return {str(k).strip().lower(): str(v) for k, v in value.items()}
    out = {}
    for item in str(value).split(","):
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise ValueError("headers must look like 'name=value,name2=value2'")
        out[key.strip().lower()] = unquote(val.strip())
    return out


@dataclass(frozen=True, slots=True)
class OtlpConfig:
    traces_endpoint: str
    protocol: str = "http/protobuf"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    compression: str = "gzip"
    timeout: float | None = None  # seconds; None: the build context's client default (10 s)

    @classmethod
    def from_vars(cls, values: Mapping[str, Any]) -> OtlpConfig:
        unknown = set(values) - _VARS
        if unknown:
            raise ValueError(f"unknown var {sorted(unknown)[0]!r} for otel; allowed: {', '.join(sorted(_VARS))}")
        protocol = str(values.get("protocol") or "http/protobuf")
        if protocol not in _PROTOCOLS:
            raise ValueError(f"var 'protocol' must be one of {', '.join(_PROTOCOLS)}, got {protocol!r}")
        endpoint = values.get("traces_endpoint")
        if not endpoint:
            base = values.get("endpoint")
            if not base:
                raise ValueError("missing var 'endpoint' for otel (OTEL_EXPORTER_OTLP_ENDPOINT or TRACELOOP_BASE_URL)")
            base = str(base).rstrip("/")
            endpoint = base if protocol == "grpc" else f"{base}/v1/traces"
        endpoint = str(endpoint)
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"var 'endpoint' must be an http(s) URL, got {endpoint[:60]!r}")
        return cls(endpoint, protocol, parse_headers(values.get("headers")), _compression(values.get("compression")),
                   _timeout(values.get("timeout")))


def _compression(value: Any) -> str:
    # Unset means gzip: OTLP protobuf of our spans compresses ~14x (see GZIP_LEVEL), so the default
    # stays what it was before the variable was read, although the SDK's own default is none.
    compression = str(value or "gzip").strip().lower()
    if compression not in _COMPRESSIONS:
        raise ValueError(f"var 'compression' (OTEL_EXPORTER_OTLP_COMPRESSION) must be one of "
                         f"{', '.join(_COMPRESSIONS)}, got {value!r}")
    return compression


def _timeout(value: Any) -> float | None:
    """OTEL_EXPORTER_OTLP_TIMEOUT is milliseconds (the spec; older Python SDKs read seconds)."""
    if value is None or value == "":
        return None
    try:
        millis = float(value)
    except (TypeError, ValueError):
        millis = -1.0
    if not millis > 0:
        raise ValueError(f"var 'timeout' (OTEL_EXPORTER_OTLP_TIMEOUT) must be a positive number of milliseconds, "
                         f"got {value!r}")
    return millis / 1000.0


def otel_env(inputs: GlobalInputs) -> dict[str, Any]:
    """The ``otel`` vars from the standard variables, a ``_TRACES_`` form winning over the general one.

    ``traces_endpoint`` and ``endpoint`` stay apart because they differ in meaning, not only in
    priority: the signal-specific URL is used as is, the general one gets ``/v1/traces`` appended.
    """
    env = inputs.env
    out = env_vars(env, {"traces_endpoint": "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                         "endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT"})
    for var, names in _OTEL_ENV.items():
        value = next((env[name] for name in names if env.get(name)), None)
        if value is not None:
            out[var] = value
    return out


def traceloop_config(values: Mapping[str, Any]) -> OtlpConfig:
    """Traceloop's SDK variables: the API key becomes ``Authorization: Bearer`` unless TRACELOOP_HEADERS
    says otherwise (as in its SDK), and the base URL defaults to Traceloop Cloud."""
    unknown = set(values) - _TRACELOOP_VARS
    if unknown:
        raise ValueError(f"unknown var {sorted(unknown)[0]!r} for traceloop; "
                         f"allowed: {', '.join(sorted(_TRACELOOP_VARS))}")
    api_key, base, headers = values.get("api_key"), values.get("endpoint"), values.get("headers")
    if not api_key and not base:
        raise ValueError("missing var 'api_key' for traceloop (TRACELOOP_API_KEY, or TRACELOOP_BASE_URL "
                         "for a collector)")
    if not headers and api_key:
        headers = {"authorization": f"Bearer {api_key}"}
    return OtlpConfig.from_vars({"endpoint": base or TRACELOOP_CLOUD, "headers": headers})


Encoder = Callable[[Sequence[ReadableSpan]], bytes]


class OtlpHttpSpanExporter(GzipPostSpanExporter):
    """POSTs one batch (gzipped unless ``compression`` is ``none``) to ``traces_endpoint``; ``encode``
    and ``content_type`` let a destination change the payload (a resource of its own, OTLP/JSON)
    without a transport of its own."""

    def __init__(self, config: OtlpConfig, client: httpx.Client, *, encode: Encoder = encode_otlp_traces,
                 content_type: str = PROTOBUF_CONTENT_TYPE) -> None:
        super().__init__(client, config.traces_endpoint, {"content-type": content_type, **config.headers}, encode,
                         compress=config.compression == "gzip", timeout=config.timeout)


def build_otlp_exporter(config: OtlpConfig, client: httpx.Client) -> SpanExporter:
    if config.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        endpoint = config.traces_endpoint
        compression = Compression.Gzip if config.compression == "gzip" else Compression.NoCompression
        return OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"),
                                headers=dict(config.headers), timeout=config.timeout, compression=compression)
    return OtlpHttpSpanExporter(config, client)


# Gateway-wide trace destinations: every span, the upstream HTTP child span included.
DESTINATIONS = (
    DestinationType("otel", OtlpConfig.from_vars, lambda config, ctx: build_otlp_exporter(config, ctx.http_client),
                    otel_env, traces=True, team_configurable=False),
    DestinationType("traceloop", traceloop_config, lambda config, ctx: build_otlp_exporter(config, ctx.http_client),
                    from_env({"api_key": "TRACELOOP_API_KEY", "endpoint": "TRACELOOP_BASE_URL",
                              "headers": "TRACELOOP_HEADERS"}),
                    traces=True, team_configurable=False),
)
