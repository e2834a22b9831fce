"""What the gateway knows about teams, in memory: config's ``default_team_settings`` plus the store.

The request path reads ``capture_content`` and hooks' ``hook_params``; the routing builder reads
``destination_specs``, ``key_destinations`` and ``logging_disabled``. All are answered from immutable
snapshots replaced whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.config.settings import GatewayConfig
from app.teams.routing import DestinationSpec, KeyDestinations, config_team_specs
from exporters.registry import DestinationRegistry


@dataclass(frozen=True, slots=True)
class TeamPolicy:
    capture_content: bool = True
    logging_disabled: bool = False
    # Hooks' per-team settings from the team's metadata (``azure_content_safety_params``), by section.
    hook_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


class TeamDirectory:
    def __init__(self, config: GatewayConfig) -> None:
        self._config = config
        self._config_teams = {entry.team_id: entry for entry in config.default_team_settings}
        self._store_specs: Mapping[str, list[DestinationSpec]] = {}
        self._key_specs: Mapping[str, KeyDestinations] = {}
        self._policies: Mapping[str, TeamPolicy] = self._config_policies()

    def _config_policies(self) -> dict[str, TeamPolicy]:
        default = not self._config.turn_off_message_logging
        return {team_id: TeamPolicy(capture_content=default if e.turn_off_message_logging is None
                                    else not e.turn_off_message_logging and default)
                for team_id, e in self._config_teams.items()}

    @property
    def config_team_ids(self) -> frozenset[str]:
        return frozenset(self._config_teams)

    def capture_content(self, team_id: str | None) -> bool:
        if team_id is None:
            return not self._config.turn_off_message_logging
        policy = self._policies.get(team_id)
        return policy.capture_content if policy else not self._config.turn_off_message_logging

    def hook_params(self, team_id: str | None, section: str) -> Mapping[str, Any] | None:
        """A team's settings for one hook: its metadata through the admin API, else its
        ``default_team_settings`` entry. The same object until the team changes (hooks cache on it)."""
        if team_id is None:
            return None
        policy = self._policies.get(team_id)
        if policy is not None and section in policy.hook_params:
            return policy.hook_params[section]
        entry = self._config_teams.get(team_id)
        value = entry.callback_vars.get(section) if entry is not None else None
        return value if isinstance(value, Mapping) else None

    def logging_disabled(self) -> frozenset[str]:
        return frozenset(t for t, p in self._policies.items() if p.logging_disabled)

    def destination_specs(self, registry: DestinationRegistry) -> dict[str, list[DestinationSpec]]:
        """Per team: callbacks set through the API, else the team's config entry."""
        specs = {team_id: config_team_specs(entry, registry) for team_id, entry in self._config_teams.items()}
        specs.update(self._store_specs)
        return specs

    def key_destinations(self) -> Mapping[str, KeyDestinations]:
        """Keys with logging of their own, by the span's key hash."""
        return self._key_specs

    def replace(self, store_specs: Mapping[str, list[DestinationSpec]], policies: Mapping[str, TeamPolicy],
                key_specs: Mapping[str, KeyDestinations] | None = None) -> None:
        """Install a new store snapshot's view (called by the store watcher). Where the config and the
        store both speak of a team, the stricter content setting wins."""
        self._store_specs = dict(store_specs)
        self._key_specs = dict(key_specs or {})
        merged = self._config_policies()
        for team_id, policy in policies.items():
            config = merged.get(team_id)
            merged[team_id] = policy if config is None else TeamPolicy(
                capture_content=config.capture_content and policy.capture_content,
                logging_disabled=policy.logging_disabled, hook_params=policy.hook_params)
        self._policies = merged
