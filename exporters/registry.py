"""Destination names -> typed settings and exporter factories; resolved once, at config or API time.

``"callback_name": "langfuse"`` is fine at the API edge; past this module nothing compares
callback names. The registry is an immutable value built by ``builtin_registry()``, not a global.

``DestinationType.spool`` says whether the delivery layer writes the type's spans to its SQLite
spool before they count as accepted. Remote destinations (``otel``, ``langfuse``) need it: the
spool is what carries spans across an outage and a restart. Local ones (``file``, ``console``)
do not: the file is itself the durable log, and a spool in front of it doubles the writes (and
costs ~0.2 ms of CPU per request at the bench: encode, commit, read, ack). Their spans wait in
memory, for up to one batch delay (0.2 s by default), before the exporter writes them; a kill -9
loses at most what arrived in that window, and a clean shutdown flushes it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import httpx
from opentelemetry.sdk.trace.export import SpanExporter

from exporters import langfuse
from exporters.console import ConsoleConfig, ConsoleSpanExporter
from exporters.file import FileConfig, FileSpanExporter
from exporters.otlp import OtlpConfig, build_otlp_exporter


@dataclass(frozen=True)
class BuildContext:
    """What exporters may be given: a background HTTP client (never the request path's) and paths.

    ``api_http_client`` is for destinations set through the admin API: its connections are checked
    against the callback policy (``exporters.urlpolicy``). ``for_api()`` is the context to build
    those with; it fails rather than fall back to the unchecked client.
    """

    http_client: httpx.Client
    span_log_path: Path
    console: TextIO = field(default_factory=lambda: sys.stdout)
    api_http_client: httpx.Client | None = None

    def for_api(self) -> BuildContext:
        if self.api_http_client is None:
            raise ValueError("no policy-checked HTTP client to build an API-set destination with")
        return replace(self, http_client=self.api_http_client)


@dataclass(frozen=True)
class DestinationType:
    name: str
    parse: Callable[[Mapping[str, Any]], Any]  # vars -> typed config; ValueError names the var
    build: Callable[[Any, BuildContext], SpanExporter]
    global_vars: Callable[[Mapping[str, str], BuildContext], dict[str, Any]]  # env -> vars, global form
    secret_vars: frozenset[str] = frozenset()
    traces: bool = False  # receives every span (collector-style), not only the gateway's LLM spans
    team_configurable: bool = True
    spool: bool = True  # queue in the durable spool (see the module docstring); False: in memory
    base_urls: Callable[[Any], Mapping[str, str]] = lambda _config: {}  # var -> the URL it connects to


class UnknownDestination(ValueError):
    pass


@dataclass(frozen=True)
class DestinationRegistry:
    types: Mapping[str, DestinationType]

    def get(self, name: str) -> DestinationType:
        kind = self.types.get(name)
        if kind is None:
            raise UnknownDestination(f"unknown callback {name!r}; supported: {', '.join(self.names)}")
        return kind

    @property
    def names(self) -> list[str]:
        return sorted(self.types)

    @property
    def team_names(self) -> list[str]:
        return sorted(n for n, t in self.types.items() if t.team_configurable)


def _env(env: Mapping[str, str], mapping: Mapping[str, str]) -> dict[str, Any]:
    return {var: env[name] for var, name in mapping.items() if env.get(name)}


def _otel_vars(env: Mapping[str, str], _ctx: BuildContext) -> dict[str, Any]:
    return _env(env, {"traces_endpoint": "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                      "endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
                      "headers": "OTEL_EXPORTER_OTLP_HEADERS",
                      "protocol": "OTEL_EXPORTER_OTLP_PROTOCOL"})


def _traceloop_vars(env: Mapping[str, str], _ctx: BuildContext) -> dict[str, Any]:
    return _env(env, {"endpoint": "TRACELOOP_BASE_URL", "headers": "TRACELOOP_HEADERS"})


def builtin_registry() -> DestinationRegistry:
    otel = DestinationType("otel", OtlpConfig.from_vars, lambda c, ctx: build_otlp_exporter(c, ctx.http_client),
                           _otel_vars, traces=True, team_configurable=False)
    types = [
        DestinationType("file", FileConfig.from_vars, lambda c, _ctx: FileSpanExporter(c),
                        lambda _env, ctx: {"path": str(ctx.span_log_path)}, team_configurable=False, spool=False),
        DestinationType("console", ConsoleConfig.from_vars, lambda c, ctx: ConsoleSpanExporter(c, ctx.console),
                        lambda _env, _ctx: {}, team_configurable=False, spool=False),
        otel,
        DestinationType("traceloop", otel.parse, otel.build, _traceloop_vars, traces=True, team_configurable=False),
        DestinationType("langfuse", langfuse.LangfuseConfig.from_vars,
                        lambda c, ctx: langfuse.LangfuseSpanExporter(c, ctx.http_client),
                        lambda env, _ctx: _env(env, langfuse.config.ENV_VARS),
                        secret_vars=langfuse.config.SECRET_VARS,
                        base_urls=lambda c: {langfuse.config.HOST_VAR: c.host}),
    ]
    return DestinationRegistry({t.name: t for t in types})
