"""The team router on spans from a real TracerProvider: who gets what, and nothing ever raises."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import Status, StatusCode, Tracer, use_span

from contracts import semconv as sc
from processors.team_router import Route, RoutingTable, TeamRouterSpanProcessor


class Recorder:
    def __init__(self, key: str) -> None:
        self.key = key
        self.names: list[str] = []

    def submit(self, span: ReadableSpan) -> None:
        self.names.append(span.name)


class Broken(Recorder):
    def submit(self, span: ReadableSpan) -> None:
        raise RuntimeError("broken sink")


@pytest.fixture
def sinks() -> dict[str, Recorder]:
    return {k: Recorder(k) for k in ("ops_ok", "ops_err", "otel", "a_ok", "a_err")}


@pytest.fixture
def router(sinks: dict[str, Recorder]) -> TeamRouterSpanProcessor:
    default = Route(success=(sinks["ops_ok"],), failure=(sinks["ops_err"],), traces=(sinks["otel"],))
    team_a = Route(success=(sinks["a_ok"],), failure=(sinks["a_err"],), traces=(sinks["otel"],))
    return TeamRouterSpanProcessor(RoutingTable(default=default, teams={"a": team_a},
                                                disabled_teams=frozenset({"quiet"})))


@pytest.fixture
def tracer(router: TeamRouterSpanProcessor) -> Iterator[Tracer]:
    provider = TracerProvider()
    provider.add_span_processor(router)
    yield provider.get_tracer("test")
    provider.shutdown()


def call(tracer: Tracer, name: str, team: str | None, *, error: bool = False, child: bool = False) -> None:
    attrs = {sc.OPERATION_NAME: sc.OP_CHAT, **({sc.TEAM_ID: team} if team else {})}
    span = tracer.start_span(name, attributes=attrs)
    with use_span(span, end_on_exit=False):
        if child:
            tracer.start_span(f"{name}/http").end()  # like the upstream HTTP span: no gen_ai attributes
    if error:
        span.set_status(Status(StatusCode.ERROR, "boom"))
    span.end()


def test_team_spans_go_to_the_team_route_others_to_the_default(tracer: Tracer, sinks: dict[str, Recorder]) -> None:
    call(tracer, "a1", "a")
    call(tracer, "a2", "a", error=True)
    call(tracer, "b1", "b")  # a team without a route of its own gets the default
    call(tracer, "n1", None)
    assert {k: s.names for k, s in sinks.items()} == {
        "ops_ok": ["b1", "n1"], "ops_err": [], "otel": ["a1", "a2", "b1", "n1"], "a_ok": ["a1"], "a_err": ["a2"]}


def test_child_spans_inherit_the_team_and_reach_trace_destinations_only(
        tracer: Tracer, sinks: dict[str, Recorder], router: TeamRouterSpanProcessor) -> None:
    call(tracer, "a1", "a", child=True)
    assert sinks["otel"].names == ["a1/http", "a1"]
    assert sinks["a_ok"].names == ["a1"]
    assert router.errors == 0


def test_child_spans_inherit_the_team_alias_so_otlp_keeps_them_in_their_team_resource(
        tracer: Tracer, router: TeamRouterSpanProcessor) -> None:
    kept: list[ReadableSpan] = []
    sink = Recorder("otel")
    sink.submit = kept.append  # type: ignore[method-assign]
    router.update(RoutingTable(default=Route(traces=(sink,))))
    span = tracer.start_span("a1", attributes={sc.OPERATION_NAME: sc.OP_CHAT, sc.TEAM_ID: "a", sc.TEAM_ALIAS: "A",
                                               sc.KEY_HASH: "h"})
    with use_span(span, end_on_exit=True):
        tracer.start_span("a1/http").end()
    assert dict(kept[0].attributes or {}) == {sc.TEAM_ID: "a", sc.TEAM_ALIAS: "A", sc.KEY_HASH: "h"}


def test_a_guardrail_span_reaches_trace_destinations_only_though_it_names_an_operation(
        tracer: Tracer, sinks: dict[str, Recorder]) -> None:
    span = tracer.start_span("a1", attributes={sc.OPERATION_NAME: sc.OP_CHAT, sc.TEAM_ID: "a"})
    with use_span(span, end_on_exit=True):
        tracer.start_span("apply_guardrail x", attributes={sc.OPERATION_NAME: sc.OP_APPLY_GUARDRAIL}).end()
    assert (sinks["otel"].names, sinks["a_ok"].names) == (["apply_guardrail x", "a1"], ["a1"])


def test_a_disabled_team_logs_nowhere_not_even_its_child_spans(tracer: Tracer, sinks: dict[str, Recorder]) -> None:
    call(tracer, "q1", "quiet", child=True)
    call(tracer, "q2", "quiet", error=True)
    assert all(s.names == [] for s in sinks.values())


def test_a_broken_sink_neither_raises_out_of_span_end_nor_starves_the_others(
        tracer: Tracer, sinks: dict[str, Recorder], router: TeamRouterSpanProcessor) -> None:
    broken = Broken("broken")
    router.update(RoutingTable(default=Route(success=(broken, sinks["ops_ok"]), traces=(broken, sinks["otel"]))))
    call(tracer, "n1", None)  # would raise here if on_end let the exception through
    assert (sinks["ops_ok"].names, sinks["otel"].names) == (["n1"], ["n1"])
    assert router.errors == 2


def test_update_swaps_the_whole_table(tracer: Tracer, sinks: dict[str, Recorder],
                                      router: TeamRouterSpanProcessor) -> None:
    router.update(RoutingTable(default=Route(success=(sinks["a_ok"],)), version=7))
    call(tracer, "n1", None)
    assert (router.table.version, sinks["a_ok"].names, sinks["ops_ok"].names) == (7, ["n1"], [])


def test_an_upstream_call_is_traced_only_when_its_team_routes_to_a_trace_destination(
        tracer: Tracer, router: TeamRouterSpanProcessor, sinks: dict[str, Recorder]) -> None:
    team_b_untraced = Route(success=(sinks["ops_ok"],))
    router.update(RoutingTable(default=Route(success=(sinks["ops_ok"],)),
                               teams={"a": Route(traces=(sinks["otel"],)), "b": team_b_untraced},
                               disabled_teams=frozenset({"quiet"})))
    seen = {}
    for team in ("a", "b", None, "quiet"):
        span = tracer.start_span("call", attributes={sc.TEAM_ID: team} if team else {})
        with use_span(span, end_on_exit=True):
            seen[team] = router.traces_current_call()
    assert seen == {"a": True, "b": False, None: False, "quiet": False}
    assert router.traces_current_call() is False  # no current span at all
    assert router.errors == 0


def keyed_call(tracer: Tracer, name: str, team: str | None, key_hash: str, *, child: bool = False) -> None:
    attrs = {sc.OPERATION_NAME: sc.OP_CHAT, sc.KEY_HASH: key_hash, **({sc.TEAM_ID: team} if team else {})}
    span = tracer.start_span(name, attributes=attrs)
    with use_span(span, end_on_exit=False):
        if child:
            tracer.start_span(f"{name}/http").end()
    span.end()


def test_a_key_with_a_route_of_its_own_takes_its_spans_and_its_child_spans(
        tracer: Tracer, router: TeamRouterSpanProcessor) -> None:
    own, own_traces = Recorder("k_ok"), Recorder("k_otel")
    table = router.table
    router.update(RoutingTable(default=table.default, teams=table.teams, disabled_teams=table.disabled_teams,
                               keys={"k1": Route(success=(own,), traces=(own_traces,)),
                                     "k-quiet": Route(success=(own,))}))
    keyed_call(tracer, "k1-call", "a", "k1", child=True)
    keyed_call(tracer, "k2-call", "a", "k2")  # a key without logging of its own: its team's route
    keyed_call(tracer, "quiet-call", "quiet", "k-quiet")  # the team's switch covers its keys
    assert (own.names, own_traces.names) == (["k1-call"], ["k1-call/http", "k1-call"])
    assert router.errors == 0


def test_key_routes_decide_whether_an_upstream_call_is_traced(tracer: Tracer, router: TeamRouterSpanProcessor,
                                                              sinks: dict[str, Recorder]) -> None:
    router.update(RoutingTable(default=Route(), keys={"k1": Route(traces=(sinks["otel"],))}))
    seen = {}
    for key in ("k1", "k2"):
        span = tracer.start_span("call", attributes={sc.KEY_HASH: key})
        with use_span(span, end_on_exit=True):
            seen[key] = router.traces_current_call()
    assert seen == {"k1": True, "k2": False}
