"""Builds the router's table from the config and the teams' and keys' callbacks, once per config version.

A destination is a typed config plus a stable key (``global/langfuse``, ``team/<id>/langfuse/success``,
``key/<key hash>/langfuse/success``). Its exporter is built once and reused until its config changes,
when the delivery layer swaps the exporter and keeps what was spooled for that key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry.sdk.trace.export import SpanExporter

from app.config.settings import ConfigError, GatewayConfig, TeamSettingsConfig
from app.litellm.destinations import user_destinations
from app.litellm.loader import is_user_callback
from app.store import CallbackType
from exporters.content_policy import MessageLogging, with_content_policy
from exporters.registry import BuildContext, DestinationRegistry, DestinationType, GlobalInputs, UnknownDestination
from processors.team_router import Route, RoutingTable, Sink

log = logging.getLogger(__name__)

CALLBACK_TYPES = tuple(CallbackType)  # what the admin API accepts, in the order its 400 lists them
_ON_SUCCESS = (CallbackType.SUCCESS, CallbackType.SUCCESS_AND_FAILURE)
_ON_FAILURE = (CallbackType.FAILURE, CallbackType.SUCCESS_AND_FAILURE)


class SinkFactory(Protocol):
    def open(self, key: str, *, team: str | None, name: str, factory: Any, durable: bool | None = None) -> Sink: ...

    def close(self, key: str) -> None: ...


@dataclass(frozen=True, slots=True)
class DestinationSpec:
    key: str
    name: str
    kind: DestinationType | None  # None only when not usable
    config: Any
    callback_type: CallbackType = CallbackType.SUCCESS_AND_FAILURE
    team: str | None = None
    usable: bool = True
    from_api: bool = False  # set through the admin API: built with the policy-checked client
    key_hash: str | None = None  # a key's own entry: the span's key hash (sc.KEY_HASH) it is for
    message_logging: MessageLogging = MessageLogging.FULL  # this destination's own content policy

    @property
    def owned(self) -> bool:
        """A team's or a key's entry, as opposed to a gateway-wide (global) one."""
        return self.team is not None or self.key_hash is not None

    @property
    def type_name(self) -> str:
        """The destination type's own name, aliases resolved (``generic_api`` is ``generic``): a team
        entry replaces the global one of the same type, whichever of its names either was given by."""
        return self.kind.name if self.kind is not None else self.name

    @property
    def on_success(self) -> bool:
        return self.callback_type in _ON_SUCCESS

    @property
    def on_failure(self) -> bool:
        return self.callback_type in _ON_FAILURE


def global_specs(config: GatewayConfig, registry: DestinationRegistry, env: Mapping[str, str],
                 ctx: BuildContext) -> list[DestinationSpec]:
    specs: dict[str, DestinationSpec] = {}
    for section, names in (("success_callback", config.success_callback),
                           ("failure_callback", config.failure_callback)):
        for name in names:
            if is_user_callback(name):  # a user's own exporter or processor: below
                continue
            try:
                kind = registry.get(name)
                parsed = global_config(kind, config, env, ctx)
            except (UnknownDestination, ValueError) as exc:
                raise ConfigError(f"litellm_settings.{section}: {name}: {exc}") from None
            kind_type = CallbackType.of(success=name in config.success_callback,
                                        failure=name in config.failure_callback)
            specs[name] = DestinationSpec(f"global/{name}", name, kind, parsed, kind_type)
    for user in user_destinations(config):
        kind_type = CallbackType.of(success=user.success, failure=user.failure)
        specs[user.name] = DestinationSpec(f"global/{user.name}", user.name, user.kind, user.obj, kind_type)
    return list(specs.values())


def global_config(kind: DestinationType, config: GatewayConfig, env: Mapping[str, str], ctx: BuildContext) -> Any:
    """A destination's typed config in the global form (its settings section and the environment)."""
    own_settings = {**config.callback_settings.get(kind.settings_section or "", {}),
                    **{k: config.callback_keys[k] for k in kind.settings_keys if k in config.callback_keys}}
    return kind.parse(kind.global_vars(GlobalInputs(env, own_settings, ctx)))


def config_team_specs(entry: TeamSettingsConfig, registry: DestinationRegistry) -> list[DestinationSpec]:
    """A ``default_team_settings`` entry: its vars are shared, each callback takes the ``<type>_*`` ones
    (by the type's own name: ``generic_api`` takes the ``generic_logger_*`` vars as ``generic`` does)."""
    where = f"litellm_settings.default_team_settings[team_id={entry.team_id}]"
    out = []
    for name in dict.fromkeys(entry.success_callback + entry.failure_callback):
        callback_type = CallbackType.of(success=name in entry.success_callback,
                                        failure=name in entry.failure_callback)
        try:
            kind = registry.get(name)
            values = {k: v for k, v in entry.callback_vars.items() if k.startswith(f"{kind.name}_")}
            parsed = kind.parse(values)
        except (UnknownDestination, ValueError) as exc:
            raise ConfigError(f"{where}: {name}: {exc}") from None
        if not kind.team_configurable:
            raise ConfigError(f"{where}: {name} is a gateway-wide destination; set it in litellm_settings")
        out.append(team_spec(entry.team_id, name, callback_type, kind, parsed))
    return out


def team_spec(team_id: str, name: str, callback_type: CallbackType, kind: DestinationType, parsed: Any, *,
              from_api: bool = False, message_logging: MessageLogging = MessageLogging.FULL) -> DestinationSpec:
    return DestinationSpec(f"team/{team_id}/{name}/{callback_type}", name, kind, parsed, callback_type, team_id,
                           from_api=from_api, message_logging=message_logging)


@dataclass(frozen=True, slots=True)
class KeyDestinations:
    """A key's own entries (``metadata.logging``) and the team whose entries they override."""

    team: str | None
    specs: tuple[DestinationSpec, ...]


def key_spec(key_hash: str, team_id: str | None, name: str, callback_type: CallbackType, kind: DestinationType | None,
             parsed: Any, *, usable: bool = True,
             message_logging: MessageLogging = MessageLogging.FULL) -> DestinationSpec:
    """``key_hash`` is the span's short key hash: it names the sink too, so health and metrics can
    tell keys apart without ever showing a lookup-able hash."""
    return DestinationSpec(f"key/{key_hash}/{name}/{callback_type}", name, kind, parsed, callback_type, team_id,
                           usable=usable, from_api=True, key_hash=key_hash, message_logging=message_logging)


def build_context(spec: DestinationSpec, ctx: BuildContext) -> BuildContext:
    """API-set destinations connect only where the callback policy allows; the config's are the operator's."""
    return ctx.for_api() if spec.from_api else ctx


def unusable_spec(team_id: str, name: str, callback_type: CallbackType,
                  kind: DestinationType | None = None) -> DestinationSpec:
    """A team entry that cannot be built (say its secret no longer decrypts after a key change).
    It still replaces the global destination of the same name: the team's spans then go nowhere,
    which is recoverable, instead of to the operator's project, which is a leak."""
    return DestinationSpec(f"team/{team_id}/{name}/{callback_type}", name, kind, None, callback_type, team_id,
                           usable=False)


def team_route(own: Iterable[DestinationSpec], globals_: Iterable[DestinationSpec], sinks: Mapping[str, Sink]) -> Route:
    """The team's own destinations, plus the global ones it has no entry of the same name for.

    A trace destination (``otel``, ``otlp``) takes every span of the team, the upstream child included.
    A team's own trace destination set for one outcome only takes that outcome's gateway spans, as an
    LLM log does (a child span ends before the call's outcome is known, so it cannot be sorted by it);
    the global ones keep LiteLLM's reading of ``success_callback: ["otel"]``: trace everything.
    """
    own = list(own)
    replaced = {spec.type_name for spec in own}
    chosen = [s for s in own if s.usable] + [g for g in globals_ if g.type_name not in replaced]
    every_span = [s for s in chosen
                  if s.kind.traces and (not s.owned or s.callback_type == CallbackType.SUCCESS_AND_FAILURE)]
    logs = [s for s in chosen if s not in every_span]
    return Route(success=tuple(sinks[s.key] for s in logs if s.on_success and not s.kind.failures_only),
                 failure=tuple(sinks[s.key] for s in logs if s.on_failure),
                 traces=tuple(sinks[s.key] for s in every_span))


def key_route(key: KeyDestinations, team_own: Iterable[DestinationSpec], globals_: Iterable[DestinationSpec],
              sinks: Mapping[str, Sink]) -> Route:
    """A key's entries replace its team's of the same type, as a team's replace the global ones; a
    key without a team has its entries replace the global ones of the same type likewise."""
    replaced = {spec.type_name for spec in key.specs}
    return team_route([*key.specs, *(s for s in team_own if s.type_name not in replaced)], globals_, sinks)


def _is_trace(spec: DestinationSpec) -> bool:
    return spec.kind is not None and spec.kind.traces


class RoutingBuilder:
    """Keeps the open destinations in step with the specs; builds each exporter once per config."""

    def __init__(self, manager: SinkFactory, ctx: BuildContext, *, export_traces: bool = True) -> None:
        self._manager = manager
        self._ctx = ctx
        # False under OTEL_SDK_DISABLED: trace destinations are left out of every table, so none is
        # opened, no span is queued for one and the upstream transport makes no child spans.
        self._export_traces = export_traces
        self._open: dict[str, tuple[DestinationSpec, Sink]] = {}

    def build(self, globals_: list[DestinationSpec], teams: Mapping[str, list[DestinationSpec]],
              disabled: frozenset[str], version: int,
              keys: Mapping[str, KeyDestinations] | None = None) -> RoutingTable:
        keys = keys or {}
        if not self._export_traces:
            globals_ = [s for s in globals_ if not _is_trace(s)]
            teams = {team: [s for s in specs if not _is_trace(s)] for team, specs in teams.items()}
            keys = {k: KeyDestinations(d.team, tuple(s for s in d.specs if not _is_trace(s))) for k, d in keys.items()}
        wanted = ({s.key: s for s in globals_} | {s.key: s for specs in teams.values() for s in specs if s.usable}
                  | {s.key: s for d in keys.values() for s in d.specs if s.usable})
        for key in [k for k in self._open if k not in wanted]:
            self._manager.close(key)
            del self._open[key]
        for key, spec in wanted.items():
            current = self._open.get(key)
            # A changed content policy is a new exporter too (the delivery layer keeps the queue).
            if current is None or (current[0].config, current[0].message_logging) != (spec.config,
                                                                                      spec.message_logging):
                sink = self._manager.open(key, team=spec.team, name=spec.name, factory=self._factory(spec),
                                          durable=spec.kind.spool)
                self._open[key] = (spec, sink)
        sinks = {key: sink for key, (_spec, sink) in self._open.items()}
        default = team_route((), globals_, sinks)
        routes = {team: team_route(specs, globals_, sinks) for team, specs in teams.items()}
        key_routes = {k: key_route(d, teams.get(d.team, ()) if d.team else (), globals_, sinks)
                      for k, d in keys.items()}
        return RoutingTable(default=default, teams=routes, disabled_teams=disabled, version=version, keys=key_routes)

    def _factory(self, spec: DestinationSpec) -> Any:
        ctx = build_context(spec, self._ctx)

        def make() -> SpanExporter:  # on a delivery thread (LazySpanExporter), as is the stripping
            return with_content_policy(spec.kind.build(spec.config, ctx), spec.message_logging)

        return make
