"""``litellm_settings``: where spans go (callbacks by name), the call hooks, and teams' defaults.

Names stay names here: which destination a name means, and whether its settings are valid, is
decided where destinations are built (``app.teams.routing``, run at start-up by
``app.server.factory.check_destinations``), so reading the config loads no destination.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.config.keys import DESTINATION_KEYS
from app.config.values import as_bool, as_list, as_mapping, as_names, as_str, dedupe

# Built-in call hooks named in ``litellm_settings.callbacks`` (not span destinations).
HOOK_NAMES = frozenset({"azure_content_safety"})
_TEAM_KEYS = frozenset({"team_id", "success_callback", "failure_callback", "callbacks", "turn_off_message_logging"})


def is_hook_name(name: str) -> bool:
    """A call hook rather than a destination: a built-in hook, or a user's ``module.attribute``."""
    return name in HOOK_NAMES or ("." in name and not name.startswith(".") and not name.endswith("."))


@dataclass(frozen=True, slots=True)
class TeamSettingsConfig:
    """One ``litellm_settings.default_team_settings`` entry: callbacks and their vars for a team."""

    team_id: str
    success_callback: tuple[str, ...] = ()
    failure_callback: tuple[str, ...] = ()
    callback_vars: Mapping[str, Any] = field(default_factory=dict, repr=False)
    turn_off_message_logging: bool | None = None


@dataclass(frozen=True, slots=True)
class LitellmSettings:
    """The section as ``GatewayConfig`` holds it (fields of the same names; see there)."""

    success_callback: tuple[str, ...]
    failure_callback: tuple[str, ...]
    callback_settings: Mapping[str, Mapping[str, Any]] = field(repr=False)
    callback_keys: Mapping[str, Any] = field(repr=False)
    turn_off_message_logging: bool
    default_team_settings: tuple[TeamSettingsConfig, ...]
    hooks: tuple[str, ...]


def parse_litellm_settings(litellm: Mapping[str, Any]) -> LitellmSettings:
    """``callbacks`` entries are both a success and a failure callback, unless they are hooks."""
    both = as_names(litellm.get("callbacks"), "litellm_settings.callbacks")
    hooks = tuple(name for name in both if is_hook_name(name))
    both = tuple(name for name in both if not is_hook_name(name))
    return LitellmSettings(
        success_callback=dedupe(as_names(litellm.get("success_callback"), "litellm_settings.success_callback") + both),
        failure_callback=dedupe(as_names(litellm.get("failure_callback"), "litellm_settings.failure_callback") + both),
        # Destinations' own sections (``s3_callback_params``), read by the destination that declares one ...
        callback_settings={str(k): as_mapping(v, f"litellm_settings.{k}") for k, v in litellm.items()
                           if str(k).endswith("_params")},
        # ... and the plain keys a destination declares (``dynamodb_table_name``), as LiteLLM spells them.
        callback_keys={str(k): v for k, v in litellm.items() if k in DESTINATION_KEYS},
        turn_off_message_logging=as_bool(litellm.get("turn_off_message_logging", False),
                                         "litellm_settings.turn_off_message_logging"),
        default_team_settings=_team_settings(litellm.get("default_team_settings")),
        hooks=hooks,
    )


def _team_settings(raw: Any) -> tuple[TeamSettingsConfig, ...]:
    if raw is None:
        return ()
    items = as_list(raw, "litellm_settings.default_team_settings")
    return tuple(_team_entry(item, f"litellm_settings.default_team_settings[{i}]") for i, item in enumerate(items))


def _team_entry(raw: Any, where: str) -> TeamSettingsConfig:
    """The team's callbacks; every other key is a var its destinations or hooks read."""
    entry = as_mapping(raw, where)
    both = as_names(entry.get("callbacks"), f"{where}.callbacks")
    logging_off = entry.get("turn_off_message_logging")
    return TeamSettingsConfig(
        team_id=as_str(entry.get("team_id"), f"{where}.team_id"),
        success_callback=dedupe(as_names(entry.get("success_callback"), f"{where}.success_callback") + both),
        failure_callback=dedupe(as_names(entry.get("failure_callback"), f"{where}.failure_callback") + both),
        callback_vars={k: v for k, v in entry.items() if k not in _TEAM_KEYS},
        turn_off_message_logging=None if logging_off is None else as_bool(logging_off,
                                                                          f"{where}.turn_off_message_logging"),
    )
