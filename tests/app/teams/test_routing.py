"""app/teams/routing.py: the builder opens each destination with its type's durability."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from app.config.settings import TeamSettingsConfig, default_config
from app.store import CallbackType
from app.teams.routing import (
    DestinationSpec,
    RoutingBuilder,
    config_team_specs,
    global_specs,
    team_route,
    team_spec,
    unusable_spec,
)
from exporters.registry import BuildContext, builtin_registry

SUCCESS, BOTH = CallbackType.SUCCESS, CallbackType.SUCCESS_AND_FAILURE


class RecordingSinks:
    def __init__(self) -> None:
        self.opened: dict[str, bool | None] = {}

    def open(self, key: str, *, team: str | None, name: str, factory: Any, durable: bool | None = None) -> Any:
        self.opened[key] = durable
        return object()

    def close(self, key: str) -> None:
        self.opened.pop(key, None)


def test_local_destinations_are_opened_without_the_spool_remote_ones_with_it(tmp_path: Path) -> None:
    registry = builtin_registry()
    with httpx.Client() as client:
        ctx = BuildContext(http_client=client, span_log_path=tmp_path / "spans.jsonl", console=io.StringIO())
        config = replace(default_config(tmp_path), success_callback=("file", "console", "otel"))
        specs = global_specs(config, registry, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, ctx)
        sinks = RecordingSinks()
        RoutingBuilder(sinks, ctx).build(specs, {}, frozenset(), 1)
    assert sinks.opened == {"global/file": False, "global/console": False, "global/otel": True}


def test_registry_spools_every_type_but_the_local_ones() -> None:
    registry = builtin_registry()
    assert {name: registry.get(name).spool for name in registry.names} == {
        name: name not in ("console", "file") for name in registry.names}
    assert {"langfuse", "otel", "generic", "datadog", "sentry", "openmeter"} <= set(registry.names)


def test_a_team_entry_replaces_the_global_one_whichever_alias_either_used() -> None:
    registry = builtin_registry()
    generic = registry.get("generic")
    config = generic.parse({"generic_logger_endpoint": "http://127.0.0.1:9/x"})
    globals_ = [DestinationSpec(f"global/{name}", name, registry.get(name), config, SUCCESS)
                for name in ("generic", "athina")]
    sinks: dict[str, Any] = {spec.key: spec.key for spec in globals_}
    own = team_spec("t", "generic_api", SUCCESS, registry.get("generic_api"), config)
    sinks[own.key] = own.key
    assert team_route([own], globals_, sinks).success == ("team/t/generic_api/success", "global/athina")
    # An entry that cannot be used (its secret no longer decrypts) still keeps the operator's webhook out.
    broken = unusable_spec("t", "generic_api", SUCCESS, registry.get("generic_api"))
    assert team_route([broken], globals_, sinks).success == ("global/athina",)


def test_default_team_settings_give_an_alias_its_types_vars() -> None:
    entry = TeamSettingsConfig(team_id="t", success_callback=("generic_api",), failure_callback=(),
                               callback_vars={"generic_logger_endpoint": "http://127.0.0.1:9/x",
                                              "langfuse_public_key": "pk"})
    (spec,) = config_team_specs(entry, builtin_registry())
    assert (spec.name, spec.type_name, spec.config.endpoint) == ("generic_api", "generic", "http://127.0.0.1:9/x")


def test_the_lists_a_callback_is_named_in_give_its_callback_type(tmp_path: Path) -> None:
    with httpx.Client() as client:
        ctx = BuildContext(http_client=client, span_log_path=tmp_path / "spans.jsonl", console=io.StringIO())
        config = replace(default_config(tmp_path), success_callback=("file", "console"),
                         failure_callback=("file", "otel"))
        specs = global_specs(config, builtin_registry(), {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, ctx)
    assert {s.name: s.callback_type for s in specs} == {"file": CallbackType.SUCCESS_AND_FAILURE,
                                                        "console": CallbackType.SUCCESS, "otel": CallbackType.FAILURE}
    assert all(isinstance(s.callback_type, CallbackType) for s in specs)  # one type, as the store's records have
    entry = TeamSettingsConfig(team_id="t", success_callback=("langfuse", "athina"), failure_callback=("athina",),
                               callback_vars={"langfuse_public_key": "pk", "langfuse_secret_key": "sk",
                                              "athina_api_key": "ak"})
    assert [s.key for s in config_team_specs(entry, builtin_registry())] == [
        "team/t/langfuse/success", "team/t/athina/success_and_failure"]


def test_a_failures_only_destination_is_never_routed_successes(tmp_path: Path) -> None:
    registry = builtin_registry()
    with httpx.Client() as client:
        ctx = BuildContext(http_client=client, span_log_path=tmp_path / "spans.jsonl", console=io.StringIO())
        config = replace(default_config(tmp_path), success_callback=("file", "sentry"),
                         failure_callback=("file", "sentry"))
        specs = global_specs(config, registry, {"SENTRY_DSN": "http://k@127.0.0.1:9/1"}, ctx)
        table = RoutingBuilder(NamedSinks(), ctx).build(specs, {}, frozenset(), 1)
    assert (table.default.success, table.default.failure) == (("global/file",), ("global/file", "global/sentry"))


class NamedSinks(RecordingSinks):
    def open(self, key: str, *, team: str | None, name: str, factory: Any, durable: bool | None = None) -> Any:
        super().open(key, team=team, name=name, factory=factory, durable=durable)
        return key


def spec(name: str, key: str, callback_type: str = "success_and_failure", team: str | None = None) -> Any:
    return DestinationSpec(key, name, builtin_registry().get(name), None, callback_type, team)


def test_a_teams_otlp_takes_every_span_of_the_team_or_one_outcomes_gateway_spans() -> None:
    sinks = {k: k for k in ("global/otel", "global/otlp", "global/langfuse", "team/a/otlp", "team/b/otlp",
                            "team/c/langsmith")}
    globals_ = [spec("otel", "global/otel", "success"), spec("otlp", "global/otlp"),
                spec("langfuse", "global/langfuse")]
    every = team_route([spec("otlp", "team/a/otlp", team="a")], globals_, sinks)
    assert (every.traces, every.success, every.failure) == (
        ("team/a/otlp", "global/otel"), ("global/langfuse",), ("global/langfuse",))
    failures = team_route([spec("otlp", "team/b/otlp", "failure", team="b")], globals_, sinks)
    assert (failures.traces, failures.success, failures.failure) == (
        ("global/otel",), ("global/langfuse",), ("team/b/otlp", "global/langfuse"))
    untouched = team_route([spec("langsmith", "team/c/langsmith", team="c")], globals_, sinks)
    assert (untouched.traces, untouched.success) == (("global/otel", "global/otlp"),
                                                     ("team/c/langsmith", "global/langfuse"))


def test_traceloop_with_only_its_api_key_resolves_to_traceloop_cloud(tmp_path: Path) -> None:
    with httpx.Client() as client:
        ctx = BuildContext(http_client=client, span_log_path=tmp_path / "spans.jsonl", console=io.StringIO())
        config = replace(default_config(tmp_path), success_callback=("traceloop",), failure_callback=())
        [spec] = global_specs(config, builtin_registry(), {"TRACELOOP_API_KEY": "tl-123"}, ctx)
    assert (spec.config.traces_endpoint, dict(spec.config.headers)) == (
        "https://api.traceloop.com/v1/traces", {"authorization": "Bearer tl-123"})
    assert "tl-123" not in repr(spec.config)


def test_with_the_sdk_disabled_no_trace_destination_is_opened_and_call_logs_stay(tmp_path: Path) -> None:
    registry = builtin_registry()
    with httpx.Client() as client:
        ctx = BuildContext(http_client=client, span_log_path=tmp_path / "spans.jsonl", console=io.StringIO())
        config = replace(default_config(tmp_path), success_callback=("file", "otel"), failure_callback=())
        specs = global_specs(config, registry, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, ctx)
        otlp = registry.get("otlp")
        team = team_spec("a", "otlp", BOTH, otlp, otlp.parse({"otlp_endpoint": "http://127.0.0.1:4318/v1/traces"}))
        sinks = RecordingSinks()
        table = RoutingBuilder(sinks, ctx, export_traces=False).build(specs, {"a": [team]}, frozenset(), 1)
    assert sinks.opened == {"global/file": False}
    assert (table.default.traces, table.teams["a"].traces) == ((), ())
    assert len(table.teams["a"].success) == 1  # the file log still gets the team's calls
