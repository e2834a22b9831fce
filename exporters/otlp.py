"""``otel`` (alias ``traceloop``): OTLP to a collector or any OTLP backend.

HTTP/protobuf goes through our own small exporter so the delivery layer sees status codes and
``Retry-After`` (the SDK exporter retries internally, then drops); gRPC uses the SDK exporter.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from contracts.failures import ExportFailure
from exporters.base import post_batch
from exporters.otlp_encode import PROTOBUF_CONTENT_TYPE, encode_otlp_traces
from exporters.plugin import DestinationType, from_env

_PROTOCOLS = ("http/protobuf", "grpc")
# OTLP protobuf of our spans compresses ~14x at level 1 already: at a 512-span batch level 1 took
# 1.4 ms for 25.8 KB, level 5 3.2 ms for 25.2 KB, level 9 4.4 ms for 25.2 KB. 2 % more bytes for
# less than half the CPU; the export threads share the gateway's core, the network is not scarce.
GZIP_LEVEL = 1
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


class OtlpHttpSpanExporter(SpanExporter):
    """POSTs one gzipped batch to ``traces_endpoint``; ``encode`` and ``content_type`` let a destination
    change the payload (a resource of its own, OTLP/JSON) without a transport of its own."""

    def __init__(self, config: OtlpConfig, client: httpx.Client, *, encode: Encoder = encode_otlp_traces,
                 content_type: str = PROTOBUF_CONTENT_TYPE) -> None:
        self._config = config
        self._client = client
        self._encode = encode
        self._headers = {"content-type": content_type, "content-encoding": "gzip", **config.headers}
        self.last_failure: ExportFailure | None = None

    def __repr__(self) -> str:  # the headers may hold credentials; say only where data goes
        return f"OtlpHttpSpanExporter(url={self._config.traces_endpoint!r})"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.last_failure = post_batch(self._client, self._config.traces_endpoint,
                                       lambda: gzip.compress(self._encode(spans), compresslevel=GZIP_LEVEL),
                                       self._headers)
        return SpanExportResult.SUCCESS if self.last_failure is None else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        return None  # the client is owned by whoever built it (the registry's build context)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


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
