"""Destination plugins: a module declares its types; the registry maps every name and alias; a
destination's own litellm_settings section reaches its global vars."""

from __future__ import annotations

import io
import types
from pathlib import Path

import httpx
import pytest

from app.config.settings import parse_config
from app.teams.routing import global_specs
from exporters.plugin import DestinationType, from_env
from exporters.registry import _MODULES, BuildContext, builtin_registry, registry_of


def fake_module(**overrides):
    kind = DestinationType("fake", dict, lambda config, _ctx: config,
                           from_env({"endpoint": "FAKE_ENDPOINT", "token": "FAKE_TOKEN"}),
                           aliases=("fake_api",), settings_section="fake_callback_params",
                           secret_vars=frozenset({"token"}), **overrides)
    return types.SimpleNamespace(DESTINATIONS=(kind,))


def test_every_builtin_module_declares_destinations_and_every_alias_resolves_to_its_type() -> None:
    registry = builtin_registry()
    declared = [kind for module in _MODULES for kind in module.DESTINATIONS]
    assert {kind.name for kind in declared} <= set(registry.names)
    for kind in declared:
        assert all(registry.get(alias) is kind for alias in (kind.name, *kind.aliases))


def test_a_name_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'fake' is declared twice"):
        registry_of([fake_module(), fake_module()])


def test_a_destination_reads_the_environment_and_its_own_settings_section_which_wins(tmp_path: Path) -> None:
    registry = registry_of([fake_module()])
    config = parse_config({
        "model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m"}}],
        "litellm_settings": {"success_callback": ["fake_api"],
                             "fake_callback_params": {"endpoint": "os.environ/FROM_REF", "extra": 1}},
    }, environ={"FROM_REF": "http://ref"})
    assert not config.warnings  # a *_params section is a destination's, not an unknown key
    with httpx.Client() as client:
        ctx = BuildContext(http_client=client, span_log_path=tmp_path / "s.jsonl", console=io.StringIO())
        [spec] = global_specs(config, registry, {"FAKE_ENDPOINT": "http://env", "FAKE_TOKEN": "t"}, ctx)
    assert spec.key == "global/fake_api" and spec.kind is registry.get("fake")
    assert spec.config == {"endpoint": "http://ref", "token": "t", "extra": 1}
