"""The team router: sends each finished span to the destinations its key's or team's route names.

``on_start`` and ``on_end`` run on the thread that starts or ends the span (the event loop), and an
exception there would propagate out of ``span.end()`` and skip later processors, so both are O(1)
dictionary look-ups that catch everything. All I/O happens behind each destination's own bounded
queue (``processors.delivery``). The routing table is an immutable snapshot replaced whole when
configuration changes, so readers never see half an update.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode, get_current_span

from contracts import semconv as sc

log = logging.getLogger(__name__)
# The alias too: OTLP encoding groups spans by team id and alias, so a child without it would land
# in a resource of its own, apart from its parent (exporters/encode/otlp_proto.py).
_INHERITED = (sc.TEAM_ID, sc.TEAM_ALIAS, sc.KEY_HASH)


class Sink(Protocol):
    key: str

    def submit(self, span: ReadableSpan) -> None: ...


@dataclass(frozen=True, slots=True)
class Route:
    """Where a span of one team goes: LLM-log destinations by outcome, and trace destinations."""

    success: tuple[Sink, ...] = ()
    failure: tuple[Sink, ...] = ()
    traces: tuple[Sink, ...] = ()  # take every span, gateway and child alike (OTLP to a collector)


@dataclass(frozen=True, slots=True)
class RoutingTable:
    default: Route = Route()
    teams: Mapping[str, Route] = field(default_factory=dict)
    disabled_teams: frozenset[str] = frozenset()
    version: int = 0
    # Keys with logging of their own, by the span's key hash (``sc.KEY_HASH``); their route already
    # holds what they keep of their team's and the global destinations. Other keys have no entry.
    keys: Mapping[str, Route] = field(default_factory=dict)

    def route(self, team_id: str | None, key_hash: str | None = None) -> Route | None:
        if team_id is not None and team_id in self.disabled_teams:
            return None  # a team's logging switch covers its keys' own destinations too
        if key_hash is not None and self.keys:
            own = self.keys.get(key_hash)
            if own is not None:
                return own
        if team_id is None:
            return self.default
        return self.teams.get(team_id, self.default)


class TeamRouterSpanProcessor(SpanProcessor):
    def __init__(self, table: RoutingTable | None = None) -> None:
        self._table = table or RoutingTable()
        self.errors = 0  # exceptions swallowed in on_end; also logged

    @property
    def table(self) -> RoutingTable:
        return self._table

    def update(self, table: RoutingTable) -> None:
        self._table = table

    def traces_current_call(self) -> bool:
        """Whether the current span's team routes to a trace destination, so an upstream call made
        under it is worth a child span. O(1); never raises (a wrong guess costs one span, not a call)."""
        try:
            attrs = getattr(get_current_span(), "attributes", None) or {}
            route = self._table.route(attrs.get(sc.TEAM_ID), attrs.get(sc.KEY_HASH))
            return route is not None and bool(route.traces)
        except Exception:
            self.errors += 1
            return False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Child spans (the upstream HTTP call, guardrail checks) inherit the team and key so routing and
        collectors see them."""
        try:
            if span.attributes and (sc.TEAM_ID in span.attributes or sc.KEY_HASH in span.attributes):
                return
            parent = get_current_span(parent_context)
            attrs = getattr(parent, "attributes", None)
            if not attrs:
                return
            for name in _INHERITED:
                if name in attrs:
                    span.set_attribute(name, attrs[name])
        except Exception:
            self.errors += 1

    def on_end(self, span: ReadableSpan) -> None:
        try:
            attrs = span.attributes or {}
            route = self._table.route(attrs.get(sc.TEAM_ID), attrs.get(sc.KEY_HASH))
            if route is None:
                return
            self._submit(route.traces, span)
            operation = attrs.get(sc.OPERATION_NAME)
            # Child spans (the upstream HTTP call, a guardrail check) go to trace destinations only.
            if operation is None or operation in sc.TRACE_ONLY_OPERATIONS:
                return
            failed = span.status.status_code is StatusCode.ERROR
            self._submit(route.failure if failed else route.success, span)
        except Exception:  # an exception here would escape span.end()
            self._failed()

    def _submit(self, sinks: tuple[Sink, ...], span: ReadableSpan) -> None:
        for sink in sinks:
            try:
                sink.submit(span)
            except Exception:  # one broken sink must not starve the others
                self._failed()

    def _failed(self) -> None:
        self.errors += 1
        log.exception("team router failed to route a span")

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
