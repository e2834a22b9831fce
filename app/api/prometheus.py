"""OTel metrics in Prometheus text format for ``GET /metrics``.

The SDK's Prometheus exporter registers itself in ``prometheus_client``'s process-wide registry,
which clashes with "no mutable module globals" and with several apps in one test process; the
text format is simple enough to render from an in-memory reader ourselves (a pure function).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, ExemplarReservoir, MeterProvider
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    InMemoryMetricReader,
    Metric,
    MetricsData,
    Sum,
)
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource
from opentelemetry.util.types import Attributes

_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _NoExemplars(ExemplarReservoir):
    """The reservoir of every metric stream: ``/metrics`` renders no exemplars, so none is kept.

    The SDK's default keeps, per attribute set (a series per team and per destination), a reservoir
    with a lock, a dict and one bucket per offered value holding the measurement's attributes: about
    0.6 KB a series, never read here. One shared instance, stateless, stands in for all of them.
    """

    def __init__(self, **_kwargs: Any) -> None:
        super().__init__()

    def offer(self, value: float, time_unix_nano: int, attributes: Attributes, context: Any) -> None:
        return None

    def collect(self, point_attributes: Attributes) -> list[Any]:
        return []


_NO_EXEMPLARS = _NoExemplars()


def build_meter_provider(resource: Resource) -> tuple[MeterProvider, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    # Every instrument keeps its default aggregation (a wildcard view changes only the reservoir).
    no_exemplars = View(instrument_name="*", exemplar_reservoir_factory=lambda _aggregation: _no_exemplars)
    return MeterProvider(metric_readers=[reader], resource=resource, views=[no_exemplars],
                         exemplar_filter=AlwaysOffExemplarFilter()), reader


def _no_exemplars(**_kwargs: Any) -> ExemplarReservoir:
    return _NO_EXEMPLARS


def metric_name(name: str, unit: str | None = None) -> str:
    base = _INVALID.sub("_", name)
    suffix = {"s": "_seconds", "USD": "_usd"}.get(unit or "", "")
    return base if not suffix or base.endswith(suffix) else base + suffix


def _labels(attrs: Mapping[str, Any], extra: Mapping[str, str] | None = None) -> str:
    items = {**{_INVALID.sub("_", k): str(v) for k, v in attrs.items()}, **(extra or {})}
    if not items:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(items.items()))
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


def _render_metric(metric: Metric) -> Iterable[str]:
    name = metric_name(metric.name, metric.unit)
    data = metric.data
    if isinstance(data, Sum):
        kind = "counter" if data.is_monotonic else "gauge"
        name = name + "_total" if kind == "counter" and not name.endswith("_total") else name
        yield f"# TYPE {name} {kind}"
        for point in data.data_points:
            yield f"{name}{_labels(point.attributes or {})} {_number(point.value)}"
    elif isinstance(data, Gauge):
        yield f"# TYPE {name} gauge"
        for point in data.data_points:
            yield f"{name}{_labels(point.attributes or {})} {_number(point.value)}"
    elif isinstance(data, Histogram):
        yield f"# TYPE {name} histogram"
        for point in data.data_points:
            attrs = point.attributes or {}
            running = 0
            for bound, count in zip([*point.explicit_bounds, math.inf], point.bucket_counts, strict=True):
                running += count
                yield f"{name}_bucket{_labels(attrs, {'le': _number(float(bound))})} {running}"
            yield f"{name}_sum{_labels(attrs)} {_number(point.sum)}"
            yield f"{name}_count{_labels(attrs)} {point.count}"


def render_prometheus(data: MetricsData | None) -> str:
    if data is None:
        return ""
    lines: list[str] = []
    for resource_metrics in data.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                lines.extend(_render_metric(metric))
    return "\n".join(lines) + "\n"
