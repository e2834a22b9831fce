"""Turns a store snapshot into what the request path and the router read, and installs it.

Runs on the event loop when the watcher sees a new version: builds the key index (hash -> Caller),
team policies, and each team's destination specs (decrypting callback vars, cached per row so a
change to one team does not decrypt a thousand), then swaps them in whole.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from app.auth import Authenticator, Caller
from app.routing import DestinationSpec, team_spec, unusable_spec
from app.secrets import SecretBox, SecretBoxError
from app.store import CallbackRecord, StoreSnapshot
from app.teams import TeamDirectory, TeamPolicy
from exporters.registry import DestinationRegistry

log = logging.getLogger(__name__)
TURN_OFF_CONTENT = "turn_off_message_logging"  # team metadata flag, as in litellm_settings
HOOK_PARAMS_SUFFIX = "_params"  # team metadata sections read by hooks, named as in litellm_settings


def secret_context(team_id: str, callback_name: str, callback_type: str) -> str:
    """Binds a ciphertext to its row: copied to another team's row, it fails to decrypt."""
    return f"{team_id}/{callback_name}/{callback_type}"


def callback_vars(record: CallbackRecord, box: SecretBox | None) -> dict[str, Any]:
    values = dict(record.plain_vars)
    if record.vars_ciphertext:
        if box is None:
            raise SecretBoxError("no SPANGATE_SALT_KEY or master_key to decrypt stored callback secrets")
        values.update(box.decrypt(record.vars_ciphertext, context=secret_context(
            record.team_id, record.callback_name, record.callback_type.value)))
    return values


def hook_params(metadata: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The ``*_params`` sections of a team's metadata: hooks' per-team settings."""
    return {k: v for k, v in metadata.items() if k.endswith(HOOK_PARAMS_SUFFIX) and isinstance(v, Mapping)}


class TeamState:
    def __init__(self, auth: Authenticator, teams: TeamDirectory, registry: DestinationRegistry,
                 box: SecretBox | None, global_content: bool) -> None:
        self._auth = auth
        self._teams = teams
        self._registry = registry
        self._box = box
        self._global_content = global_content
        self._spec_cache: dict[tuple[str, str, str], tuple[datetime, DestinationSpec]] = {}
        self.version = 0

    def apply(self, snapshot: StoreSnapshot) -> None:
        self._auth.keys = self._key_index(snapshot)
        policies = {team_id: TeamPolicy(
            capture_content=self._global_content and not bool(team.metadata.get(TURN_OFF_CONTENT)),
            logging_disabled=team.logging_disabled, hook_params=hook_params(team.metadata))
            for team_id, team in snapshot.teams.items()}
        self._teams.replace(self._specs(snapshot.callbacks), policies)
        self.version = snapshot.version

    def _key_index(self, snapshot: StoreSnapshot) -> dict[str, Caller]:
        index = {}
        for digest, key in snapshot.keys.items():
            team = snapshot.teams.get(key.team_id) if key.team_id else None
            index[digest] = Caller(
                key_hash=digest, key_alias=key.key_alias, team_id=key.team_id,
                team_alias=team.team_alias if team else None, models=frozenset(key.models),
                team_models=frozenset(team.models) if team else frozenset(),
                expires_at=key.expires_at.timestamp() if key.expires_at else None)
        return index

    def _specs(self, callbacks: Mapping[str, tuple[CallbackRecord, ...]]) -> dict[str, list[DestinationSpec]]:
        out: dict[str, list[DestinationSpec]] = {}
        seen = set()
        for team_id, records in callbacks.items():
            specs = [self._spec(record, seen) for record in records]
            if records:
                out[team_id] = specs
        for stale in set(self._spec_cache) - seen:
            del self._spec_cache[stale]
        return out

    def _spec(self, record: CallbackRecord, seen: set[tuple[str, str, str]]) -> DestinationSpec:
        cache_key = (record.team_id, record.callback_name, record.callback_type.value)
        seen.add(cache_key)
        cached = self._spec_cache.get(cache_key)
        if cached is not None and cached[0] == record.updated_at:
            return cached[1]
        spec: DestinationSpec
        kind = None
        try:
            kind = self._registry.get(record.callback_name)
            spec = team_spec(record.team_id, record.callback_name, record.callback_type.value, kind,
                             kind.parse(callback_vars(record, self._box)), from_api=True)
        except (ValueError, SecretBoxError) as exc:
            # A row that cannot be used is reported, not fatal: the other teams keep logging. Its
            # entry still stands, so this team's spans do not fall back to the global destination.
            log.error("team %s callback %s/%s unusable, its spans are not sent to it nor to the global %s: %s",
                      record.team_id, record.callback_name, record.callback_type.value, record.callback_name, exc)
            spec = unusable_spec(record.team_id, record.callback_name, record.callback_type.value, kind)
        self._spec_cache[cache_key] = (record.updated_at, spec)
        return spec


def utcnow() -> datetime:
    return datetime.now(UTC)
