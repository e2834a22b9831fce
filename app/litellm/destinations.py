"""Users' own ``SpanExporter`` and ``SpanProcessor`` objects as destinations beside the built-in ones.

They go through the same router and delivery layer: their own bounded queue, batching, retry and
``/health/destinations`` counters; a slow or failing one holds up nothing else. A ``SpanProcessor``
gets ``on_end`` from a delivery thread (``ProcessorSpanExporter``), never on the request path, and
so never ``on_start`` (a span reaches the router only when it has ended). An exporter's spans
wait in the durable spool like any remote destination's; a processor's wait in memory.

Named in ``callbacks`` (or in both ``success_callback`` and ``failure_callback``), one receives
every span, the upstream HTTP child spans included, as the built-in ``otel`` destination does;
named in one list only, it receives the gateway spans of that outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from app.config.settings import GatewayConfig
from app.litellm.loader import UserCallbackKind, user_callbacks
from contracts.failures import ExportFailure
from exporters.plugin import BuildContext, DestinationType, GlobalInputs

log = logging.getLogger("spangate.callbacks")


class ProcessorSpanExporter(SpanExporter):
    """Hands each delivered span to a user's ``SpanProcessor.on_end``. An ``on_end`` that raises is
    logged with its traceback and the batch is reported as a permanent failure (dead-lettered and
    counted): retrying would hand the spans before it over twice."""

    def __init__(self, processor: Any, name: str) -> None:
        self.processor = processor
        self.name = name
        self.last_failure: ExportFailure | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.last_failure = None
        for span in spans:
            try:
                self.processor.on_end(span)
            except Exception as exc:
                log.error("callback %s: on_end raised %s", self.name, type(exc).__name__, exc_info=exc)
                self.last_failure = ExportFailure(retryable=False, detail=f"on_end raised {type(exc).__name__}",
                                                  reason=f"on_end raised {type(exc).__name__}")
        return SpanExportResult.FAILURE if self.last_failure else SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        flush = getattr(self.processor, "force_flush", None)
        return bool(flush(timeout_millis)) if callable(flush) else True


@dataclass(frozen=True, slots=True)
class UserDestination:
    name: str
    kind: DestinationType
    obj: Any  # the user's exporter or processor: the destination's config, the same object every rebuild
    success: bool
    failure: bool


def user_destinations(config: GatewayConfig) -> list[UserDestination]:
    """Each exporter or processor named in the config (handlers are hooks: ``app.server.hook_setup``)."""
    out = []
    for loaded in user_callbacks(config):
        if loaded.kind is UserCallbackKind.HANDLER:
            continue
        name = loaded.name
        success = name in config.hooks or name in config.success_callback
        failure = name in config.hooks or name in config.failure_callback
        kind = _destination_type(name, durable=loaded.kind is UserCallbackKind.EXPORTER, traces=success and failure)
        out.append(UserDestination(name, kind, loaded.obj, success, failure))
    return out


def _destination_type(name: str, *, durable: bool, traces: bool) -> DestinationType:
    def build(obj: Any, _ctx: BuildContext) -> SpanExporter:
        return obj if durable else ProcessorSpanExporter(obj, name)

    return DestinationType(name=name, parse=_as_is, build=build, global_vars=_no_vars, team_configurable=False,
                           spool=durable, traces=traces)


def _as_is(values: Mapping[str, Any]) -> Any:
    return values


def _no_vars(_inputs: GlobalInputs) -> dict[str, Any]:
    return {}
