"""``otel`` (alias ``traceloop``): OTLP to a collector or any OTLP backend.

HTTP/protobuf goes through our own small exporter so the delivery layer sees status codes and
``Retry-After`` (the SDK exporter retries internally, then drops); gRPC uses the SDK exporter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter

from exporters.base import GzipPostSpanExporter
from exporters.otlp_encode import PROTOBUF_CONTENT_TYPE, encode_otlp_traces
from exporters.plugin import DestinationType, from_env

_PROTOCOLS = ("http/protobuf", "grpc")
_VARS = {"endpoint", "traces_endpoint", "headers", "protocol"}


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
        return cls(endpoint, protocol, parse_headers(values.get("headers")))


Encoder = Callable[[Sequence[ReadableSpan]], bytes]


class OtlpHttpSpanExporter(GzipPostSpanExporter):
    """POSTs one gzipped batch to ``traces_endpoint``; ``encode`` and ``content_type`` let a destination
    change the payload (a resource of its own, OTLP/JSON) without a transport of its own."""

    def __init__(self, config: OtlpConfig, client: httpx.Client, *, encode: Encoder = encode_otlp_traces,
                 content_type: str = PROTOBUF_CONTENT_TYPE) -> None:
        super().__init__(client, config.traces_endpoint, {"content-type": content_type, **config.headers}, encode)


def build_otlp_exporter(config: OtlpConfig, client: httpx.Client) -> SpanExporter:
    if config.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        endpoint = config.traces_endpoint
        return OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"),
                                headers=dict(config.headers))
    return OtlpHttpSpanExporter(config, client)


# Gateway-wide trace destinations: every span, the upstream HTTP child span included.
DESTINATIONS = (
    DestinationType("otel", OtlpConfig.from_vars, lambda config, ctx: build_otlp_exporter(config, ctx.http_client),
                    from_env({"traces_endpoint": "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                              "endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT", "headers": "OTEL_EXPORTER_OTLP_HEADERS",
                              "protocol": "OTEL_EXPORTER_OTLP_PROTOCOL"}),
                    traces=True, team_configurable=False),
    DestinationType("traceloop", OtlpConfig.from_vars,
                    lambda config, ctx: build_otlp_exporter(config, ctx.http_client),
                    from_env({"endpoint": "TRACELOOP_BASE_URL", "headers": "TRACELOOP_HEADERS"}),
                    traces=True, team_configurable=False),
)
