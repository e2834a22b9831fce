"""Typed settings of the ``otlp`` destination: any backend that takes OTLP/HTTP traces, per team.

Team ``callback_vars`` (and the global form's ``litellm_settings.otlp_callback_params``) become an
``OtlpBackendConfig`` through ``from_vars``; a bad var raises ``ValueError`` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote

from exporters.otlp import OtlpConfig, parse_headers
from exporters.transport.urlpolicy import normalize_base_url

__all__ = ["ALLOWED_VARS", "ENDPOINT_VAR", "PROTOCOLS", "SECRET_VARS", "OtlpBackendConfig"]

ENDPOINT_VAR: Final = "otlp_endpoint"
HEADERS_VAR: Final = "otlp_headers"
PROTOCOL_VAR: Final = "otlp_protocol"
RESOURCE_VAR: Final = "otlp_resource_attributes"
ALLOWED_VARS: Final = (ENDPOINT_VAR, HEADERS_VAR, PROTOCOL_VAR, RESOURCE_VAR)
SECRET_VARS: Final = frozenset({HEADERS_VAR})  # where backends take their API keys
PROTOCOLS: Final = ("http/protobuf", "http/json")


@dataclass(frozen=True, slots=True)
class OtlpBackendConfig:
    endpoint: str  # the full traces URL: backends differ in their paths (/v1/traces, /otel/v1/traces, ...)
    protocol: str = "http/protobuf"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    resource_attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def transport(self) -> OtlpConfig:
        return OtlpConfig(self.endpoint, "http/protobuf", self.headers)

    @classmethod
    def from_vars(cls, vars: Mapping[str, Any]) -> OtlpBackendConfig:
        allowed = ", ".join(ALLOWED_VARS)
        for name in vars:
            if name not in ALLOWED_VARS:
                raise ValueError(f"unknown otlp callback var {name!r}; allowed: {allowed}")
        if vars.get(ENDPOINT_VAR) is None:
            raise ValueError(f"missing otlp callback var {ENDPOINT_VAR!r} (the full traces URL); allowed: {allowed}")
        protocol = vars.get(PROTOCOL_VAR) or "http/protobuf"
        if protocol not in PROTOCOLS:
            raise ValueError(f"{PROTOCOL_VAR} must be one of {', '.join(PROTOCOLS)}, got {str(protocol)[:40]!r}")
        return cls(normalize_base_url(vars[ENDPOINT_VAR], ENDPOINT_VAR), protocol,
                   _headers(vars.get(HEADERS_VAR)), _resource(vars.get(RESOURCE_VAR)))


def _headers(value: Any) -> dict[str, str]:
    if value is not None and not isinstance(value, (str, Mapping)):
        raise ValueError(f"{HEADERS_VAR} must be 'name=value,...' or an object, not {type(value).__name__}")
    try:
        headers = parse_headers(value)
    except ValueError:
        raise ValueError(f"{HEADERS_VAR} must look like 'name=value,name2=value2'") from None
    for name, text in headers.items():
        # httpx sends header values as ASCII: anything else would fail every export, never this call.
        if not (name.isascii() and name.isprintable() and text.isascii() and text.isprintable()) or " " in name:
            raise ValueError(f"{HEADERS_VAR}: header names and values must be printable ASCII")
    return headers


def _resource(value: Any) -> dict[str, str]:
    """``k=v,k2=v2`` as in OTEL_RESOURCE_ATTRIBUTES (values URL-encoded), or an object."""
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if not isinstance(value, str):
        raise ValueError(f"{RESOURCE_VAR} must be 'key=value,...' or an object, not {type(value).__name__}")
    out = {}
    for item in value.split(","):
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{RESOURCE_VAR} must look like 'key=value,key2=value2'")
        out[key.strip()] = unquote(text.strip())
    return out
