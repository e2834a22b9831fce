"""The /metrics renderer read back by ``prometheus_client``'s parser.

The differential test generates metric sets (counters, up-down counters, gauges, histograms; random
names, units, descriptions and label sets; label values with quotes, backslashes and newlines; a
family split over several meters), renders them and parses the text: every family, sample, label and
value must come back exactly as the data that went in. The expectation is built from the generated
model, not from the renderer.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client.parser import text_string_to_metric_families

from app.api.prometheus import build_meter_provider, label_name, render_prometheus

CUMULATIVE = AggregationTemporality.CUMULATIVE
KINDS = ("counter", "updown", "gauge", "histogram")
UNIT_SUFFIX = {"": "", "s": "_seconds", "USD": "_usd", "{span}": ""}
# A name ending in a suffix the renderer or the parser adds or strips would name another family.
_SUFFIXED = re.compile(r"_(total|bucket|count|sum|seconds|usd|created|info)$")

# --- the generated model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    labels: dict[str, str]
    value: Any  # a number, or (bounds, counts, sum) for a histogram


@dataclass(frozen=True)
class Family:
    name: str  # an instrument name; dots become underscores
    kind: str
    unit: str
    description: str
    points: list[Point]
    parts: int  # meters the points are spread over, in order
    described_part: int  # the one meter whose instrument carries the description


names = st.from_regex(r"[a-z][a-z0-9]{0,6}([._][a-z0-9]{1,6}){0,2}", fullmatch=True).filter(
    lambda n: not _SUFFIXED.search(n.replace(".", "_")))
label_keys = st.from_regex(r"[a-z][a-z0-9]{0,5}([._][a-z0-9]{1,4}){0,2}", fullmatch=True).filter(
    lambda k: k.replace(".", "_") != "le")
tricky = st.sampled_from(['"', "\\", "\n", '\\"', "\\n", '"}', "a,b=c", " "])
label_values = st.lists(st.one_of(tricky, st.text(max_size=6)), max_size=4).map("".join)
# The parser strips whitespace around a HELP text (Prometheus's own too), so none is generated there.
descriptions = st.one_of(st.just(""), st.text(st.characters() | st.sampled_from('"\\\n'), max_size=30).map(str.strip))
finite = st.floats(allow_nan=False, allow_infinity=False)


def label_sets() -> st.SearchStrategy[dict[str, str]]:
    keys = st.lists(label_keys, max_size=4, unique_by=lambda k: k.replace(".", "_"))
    return keys.flatmap(lambda ks: st.fixed_dictionaries({k: label_values for k in ks}))


@st.composite
def histogram_values(draw: st.DrawFn) -> tuple[list[float], list[int], float]:
    bounds = sorted(draw(st.sets(st.floats(-1e6, 1e6, allow_nan=False), max_size=5)))
    counts = draw(st.lists(st.integers(0, 10**6), min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    return bounds, counts, draw(finite)


VALUES = {
    "counter": st.one_of(st.integers(0, 2**53), st.floats(0, 1e300)),
    "updown": st.one_of(st.integers(-(2**53), 2**53), finite),
    "gauge": st.one_of(st.integers(-(2**53), 2**53), st.floats()),  # NaN and the infinities included
    "histogram": histogram_values(),
}


@st.composite
def families(draw: st.DrawFn) -> Family:
    kind = draw(st.sampled_from(KINDS))
    points = draw(st.lists(st.builds(Point, label_sets(), VALUES[kind]), min_size=1, max_size=4))
    parts = draw(st.integers(1, len(points)))
    return Family(draw(names), kind, draw(st.sampled_from(sorted(UNIT_SUFFIX))), draw(descriptions), points,
                  parts, draw(st.integers(0, parts - 1)))


def rendered_name(family: Family) -> str:
    return family.name.replace(".", "_") + UNIT_SUFFIX[family.unit]


metric_sets = st.lists(families(), min_size=1, max_size=6, unique_by=rendered_name)

# --- the model as OTel metrics data ----------------------------------------------------------------


def number_point(point: Point) -> NumberDataPoint:
    return NumberDataPoint(point.labels, 0, 1, point.value)


def histogram_point(point: Point) -> HistogramDataPoint:
    bounds, counts, total = point.value
    return HistogramDataPoint(point.labels, 0, 1, sum(counts), total, counts, bounds, 0.0, 0.0)


def data_of(kind: str, points: list[Point]) -> Sum | Gauge | Histogram:
    if kind == "histogram":
        return Histogram([histogram_point(p) for p in points], CUMULATIVE)
    numbers = [number_point(p) for p in points]
    return Gauge(numbers) if kind == "gauge" else Sum(numbers, CUMULATIVE, is_monotonic=kind == "counter")


def chunks(family: Family) -> list[list[Point]]:
    """The points cut into ``parts`` runs, in order, none empty."""
    size, extra = divmod(len(family.points), family.parts)
    cuts, start = [], 0
    for i in range(family.parts):
        end = start + size + (i < extra)
        cuts.append(family.points[start:end])
        start = end
    return cuts


def metrics_data(model: list[Family]) -> MetricsData:
    """Meter ``i`` holds the ``i``-th run of every family that has one."""
    scopes: list[list[Metric]] = [[] for _ in range(max(f.parts for f in model))]
    for family in model:
        for i, points in enumerate(chunks(family)):
            description = family.description if i == family.described_part else ""
            scopes[i].append(Metric(family.name, description, family.unit, data_of(family.kind, points)))
    scope_metrics = [ScopeMetrics(InstrumentationScope(f"meter{i}"), metrics, "") for i, metrics in enumerate(scopes)]
    return MetricsData([ResourceMetrics(Resource({}), scope_metrics, "")])


# --- what the parser should give back --------------------------------------------------------------


def comparable(value: Any) -> Any:
    """Type and value (an int must not come back a float), NaN equal to itself."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return type(value), value


def expected_samples(family: Family, name: str) -> list[tuple[str, dict[str, Any], Any]]:
    if family.kind != "histogram":
        suffix = "_total" if family.kind == "counter" else ""
        return [(name + suffix, _labels(p.labels), comparable(p.value)) for p in family.points]
    samples = []
    for point in family.points:
        bounds, counts, total = point.value
        running = 0
        for bound, count in zip([*bounds, math.inf], counts, strict=True):
            running += count
            samples.append((name + "_bucket", {**_labels(point.labels), "le": bound}, comparable(running)))
        samples.append((name + "_sum", _labels(point.labels), comparable(total)))
        samples.append((name + "_count", _labels(point.labels), comparable(sum(counts))))
    return samples


def _labels(labels: dict[str, str]) -> dict[str, str]:
    return {k.replace(".", "_"): v for k, v in labels.items()}


def expected(model: list[Family]) -> list[tuple[str, str, str, list[Any]]]:
    kinds = {"counter": "counter", "updown": "gauge", "gauge": "gauge", "histogram": "histogram"}
    return [(rendered_name(f), kinds[f.kind], f.description, expected_samples(f, rendered_name(f))) for f in model]


def parsed(text: str) -> list[tuple[str, str, str, list[Any]]]:
    return [(family.name, family.type, family.documentation, [parsed_sample(s) for s in family.samples])
            for family in text_string_to_metric_families(text)]


def parsed_sample(sample: Any) -> tuple[str, dict[str, Any], Any]:
    assert sample.timestamp is None and sample.exemplar is None
    labels: dict[str, Any] = dict(sample.labels)
    if "le" in labels:
        labels["le"] = float(labels["le"])  # compared as a number: "1.0" and "1" are the same bound
    return sample.name, labels, comparable(sample.value)


# --- the tests --------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, database=None)
@given(metric_sets)
def test_generated_metric_sets_round_trip_through_prometheus_clients_parser(model: list[Family]) -> None:
    text = render_prometheus(metrics_data(model))
    assert parsed(text) == expected(model)
    types = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(types) == len(set(types)) == len(model)  # one TYPE line per family, however many meters


def test_one_instrument_name_in_two_meters_is_one_family_with_one_help_and_one_type() -> None:
    provider, reader = build_meter_provider(Resource({}))
    for meter, team in (("app", "a"), ("hooks", "b")):
        counter = provider.get_meter(meter).create_counter("spangate.things", unit="{thing}", description="Things")
        counter.add(2, {"team": team})
    text = render_prometheus(reader.get_metrics_data())
    provider.shutdown()
    assert text == ('# HELP spangate_things_total Things\n# TYPE spangate_things_total counter\n'
                    'spangate_things_total{team="a"} 2\nspangate_things_total{team="b"} 2\n')


def test_no_description_writes_no_help_line_and_a_description_is_escaped() -> None:
    provider, reader = build_meter_provider(Resource({}))
    meter = provider.get_meter("m")
    meter.create_up_down_counter("plain").add(1)
    meter.create_up_down_counter("doc", description='a "quoted" \\ back\nslash').add(1)
    text = render_prometheus(reader.get_metrics_data())
    provider.shutdown()
    assert text == ('# TYPE plain gauge\nplain 1\n'
                    '# HELP doc a "quoted" \\\\ back\\nslash\n# TYPE doc gauge\ndoc 1\n')
    assert [f.documentation for f in text_string_to_metric_families(text)] == ["", 'a "quoted" \\ back\nslash']


def test_attribute_keys_become_valid_label_names() -> None:
    assert [label_name(k) for k in ("gen_ai.system", "a:b", "9lives", "ok_1")] == \
        ["gen_ai_system", "a_b", "_9lives", "ok_1"]


def test_nothing_recorded_renders_an_empty_line_and_no_reader_nothing() -> None:
    assert render_prometheus(MetricsData([])) == "\n"
    assert render_prometheus(None) == ""
