"""OTel metrics in Prometheus text format for ``GET /metrics``.

The SDK's Prometheus exporter registers itself in ``prometheus_client``'s process-wide registry,
which clashes with "no mutable module globals" and with several apps in one test process; the
text format is simple enough to render from an in-memory reader ourselves (a pure function).

One family per rendered name: an instrument of the same name in two meters (scopes) is one
``# HELP`` and one ``# TYPE`` with the samples of both, since a scraper reads a second ``# TYPE``
line as a second family of the same name (Prometheus refuses the scrape). ``# HELP`` carries the
instrument's description and is left out when there is none: the format makes it optional.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, ExemplarReservoir, MeterProvider
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricReader,
    MetricsData,
    Sum,
)
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource
from opentelemetry.util.types import Attributes

_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")
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


def build_meter_provider(resource: Resource, *readers: MetricReader) -> tuple[MeterProvider, InMemoryMetricReader]:
    """The provider behind ``/metrics``; ``readers`` read the same instruments too (OTLP export)."""
    reader = InMemoryMetricReader()
    # Every instrument keeps its default aggregation (a wildcard view changes only the reservoir).
    no_exemplars = View(instrument_name="*", exemplar_reservoir_factory=lambda _aggregation: _no_exemplars)
    return MeterProvider(metric_readers=[reader, *readers], resource=resource, views=[no_exemplars],
                         exemplar_filter=AlwaysOffExemplarFilter()), reader


def _no_exemplars(**_kwargs: Any) -> ExemplarReservoir:
    return _NO_EXEMPLARS


def metric_name(name: str, unit: str | None = None) -> str:
    base = _INVALID.sub("_", name)
    suffix = {"s": "_seconds", "USD": "_usd"}.get(unit or "", "")
    return base if not suffix or base.endswith(suffix) else base + suffix


def label_name(key: str) -> str:
    """An attribute key as a label name: ``[a-zA-Z_][a-zA-Z0-9_]*`` (a colon is for metric names only)."""
    name = _INVALID_LABEL.sub("_", key)
    return "_" + name if name[:1].isdigit() else name


def _labels(attrs: Mapping[str, Any], extra: Mapping[str, str] | None = None) -> str:
    items = {**{label_name(k): str(v) for k, v in attrs.items()}, **(extra or {})}
    if not items:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(items.items()))
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")  # a docstring keeps its quotes


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"  # the format's spelling; repr() writes "nan"
    return repr(float(value)) if isinstance(value, float) else str(value)


@dataclass
class _Family:
    kind: str
    doc: str = ""
    samples: list[str] = field(default_factory=list)

    def lines(self, name: str) -> Iterable[str]:
        if self.doc:
            yield f"# HELP {name} {_escape_help(self.doc)}"
        yield f"# TYPE {name} {self.kind}"
        yield from self.samples


def _family_of(metric: Metric) -> tuple[str, str] | None:
    """The rendered name and the Prometheus type of ``metric``; ``None`` for data the format has no
    type for here (an exponential histogram: no instrument of ours makes one)."""
    name = metric_name(metric.name, metric.unit)
    data = metric.data
    if isinstance(data, Sum) and data.is_monotonic:
        return (name if name.endswith("_total") else name + "_total"), "counter"
    if isinstance(data, Histogram):
        return name, "histogram"
    return (name, "gauge") if isinstance(data, Sum | Gauge) else None


def _samples(name: str, data: Any) -> Iterable[str]:
    if isinstance(data, Sum | Gauge):
        for point in data.data_points:
            yield f"{name}{_labels(point.attributes or {})} {_number(point.value)}"
    elif isinstance(data, Histogram):
        for point in data.data_points:
            yield from _histogram_samples(name, point)


def _histogram_samples(name: str, point: HistogramDataPoint) -> Iterable[str]:
    attrs = point.attributes or {}
    running = 0
    for bound, count in zip([*point.explicit_bounds, math.inf], point.bucket_counts, strict=True):
        running += count
        yield f"{name}_bucket{_labels(attrs, {'le': _number(float(bound))})} {running}"
    yield f"{name}_sum{_labels(attrs)} {_number(point.sum)}"
    yield f"{name}_count{_labels(attrs)} {point.count}"


def _metrics(data: MetricsData) -> Iterable[Metric]:
    for resource_metrics in data.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            yield from scope.metrics


def render_prometheus(data: MetricsData | None) -> str:
    if data is None:
        return ""
    families: dict[str, _Family] = {}
    for metric in _metrics(data):
        if (found := _family_of(metric)) is None:
            continue
        name, kind = found
        family = families.setdefault(name, _Family(kind))  # the first instrument of a name sets its type
        family.doc = family.doc or metric.description or ""
        family.samples.extend(_samples(name, metric.data))
    return "\n".join(line for name, family in families.items() for line in family.lines(name)) + "\n"
