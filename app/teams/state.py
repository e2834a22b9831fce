"""Turns a store snapshot into what the request path and the router read, and installs it.

Runs on the event loop when the watcher sees a new version: builds the key index (hash -> Caller),
team policies, and each team's and key's destination specs (decrypting callback vars, cached per row
so a change to one team does not decrypt a thousand), then swaps them in whole.

``turn_off_message_logging`` in team or key metadata turns content capture off for all that team's
or key's calls. On a callback entry (``turn_off_message_logging`` or ``message_logging``) it is that
destination's own policy: the call is still captured once, and that destination's copy is stripped
in its export path (``exporters.content_policy``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from app.calls.caller import Caller
from app.store import CallbackRecord, KeyCallbackRecord, KeyRecord, StoreSnapshot, TeamRecord
from app.teams.auth import Authenticator
from app.teams.directory import TeamDirectory, TeamPolicy
from app.teams.limits import caller_limits, sets_limits, team_scope
from app.teams.routing import DestinationSpec, KeyDestinations, key_spec, team_spec, unusable_spec
from app.teams.secrets import SecretBox, SecretBoxError
from exporters.content_policy import POLICY_VARS, MessageLogging, message_logging
from exporters.registry import DestinationRegistry

log = logging.getLogger(__name__)
TURN_OFF_CONTENT = "turn_off_message_logging"  # team or key metadata flag, or callback var, as in LiteLLM
HOOK_PARAMS_SUFFIX = "_params"  # team metadata sections read by hooks, named as in litellm_settings
CacheKey = tuple[str, str, str, str]  # ("team" | "key", its id, callback name, callback type)
SHORT_HASH = 16  # hex digits of the key hash on spans (sc.KEY_HASH), which key routes are keyed by


def secret_context(team_id: str, callback_name: str, callback_type: str) -> str:
    """Binds a ciphertext to its row: copied to another team's row, it fails to decrypt."""
    return f"{team_id}/{callback_name}/{callback_type}"


def key_secret_context(token_hash: str, callback_name: str, callback_type: str) -> str:
    """The same binding for a key's own entry: copied to another key's row, it fails to decrypt."""
    return f"key:{token_hash}/{callback_name}/{callback_type}"


def _context(record: CallbackRecord | KeyCallbackRecord) -> str:
    if isinstance(record, KeyCallbackRecord):
        return key_secret_context(record.token_hash, record.callback_name, record.callback_type.value)
    return secret_context(record.team_id, record.callback_name, record.callback_type.value)


def callback_vars(record: CallbackRecord | KeyCallbackRecord, box: SecretBox | None) -> dict[str, Any]:
    """The entry's vars in clear, less its content policy (a policy, not a destination var)."""
    values = {k: v for k, v in record.plain_vars.items() if k not in POLICY_VARS}
    if record.vars_ciphertext:
        if box is None:
            raise SecretBoxError("no SPANGATE_SALT_KEY or master_key to decrypt stored callback secrets")
        values.update(box.decrypt(record.vars_ciphertext, context=_context(record)))
    return values


def turns_off_content(settings: Mapping[str, Any]) -> bool:
    """Team or key metadata asks for no message content (an entry's own flag is its destination's)."""
    return bool(settings.get(TURN_OFF_CONTENT))


def entry_policy(record: CallbackRecord | KeyCallbackRecord) -> MessageLogging:
    """What the entry asks for its destination; a value the API would refuse (an old row) redacts."""
    try:
        return message_logging(record.plain_vars)
    except ValueError:
        return MessageLogging.REDACTED


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
        self._spec_cache: dict[CacheKey, tuple[datetime, DestinationSpec]] = {}
        self.version = 0

    def apply(self, snapshot: StoreSnapshot) -> None:
        self._auth.keys = self._key_index(snapshot)
        # Config-only teams may have API callbacks without a row of their own.
        teams: dict[str, TeamRecord | None] = {**dict.fromkeys(snapshot.callbacks), **snapshot.teams}
        policies = {team_id: TeamPolicy(
            capture_content=self._global_content and not turns_off_content(team.metadata if team else {}),
            logging_disabled=team.logging_disabled if team else False,
            hook_params=hook_params(team.metadata) if team else {}) for team_id, team in teams.items()}
        seen: set[CacheKey] = set()
        team_specs = self._specs(snapshot.callbacks, seen)
        key_specs = self._key_specs(snapshot, seen)
        for stale in set(self._spec_cache) - seen:
            del self._spec_cache[stale]
        self._teams.replace(team_specs, policies, key_specs)
        self.version = snapshot.version

    def _key_index(self, snapshot: StoreSnapshot) -> dict[str, Caller]:
        index = {}
        # Once per team, not per key: a team of 10,000 keys shares one ScopeLimits.
        team_limits = {t.team_id: team_scope(t) for t in snapshot.teams.values() if sets_limits(t)}
        for digest, key in snapshot.keys.items():
            team = snapshot.teams.get(key.team_id) if key.team_id else None
            index[digest] = Caller(
                key_hash=digest, key_alias=key.key_alias, team_id=key.team_id,
                team_alias=team.team_alias if team else None, models=_models(key.models),
                team_models=_models(team.models) if team else NO_MODELS,
                expires_at=key.expires_at.timestamp() if key.expires_at else None,
                capture_content=not turns_off_content(key.metadata),
                user_id=key.user_id, team_admin=_administers(key, snapshot.team_admins),
                limits=caller_limits(key, team_limits.get(key.team_id) if team else None))
        return index

    def _specs(self, callbacks: Mapping[str, tuple[CallbackRecord, ...]],
               seen: set[CacheKey]) -> dict[str, list[DestinationSpec]]:
        return {team_id: [self._spec(record, seen) for record in records]
                for team_id, records in callbacks.items() if records}

    def _key_specs(self, snapshot: StoreSnapshot, seen: set[CacheKey]) -> dict[str, KeyDestinations]:
        """Only keys that still exist and have entries get a route (by the span's short key hash)."""
        out = {}
        for digest, records in snapshot.key_callbacks.items():
            key = snapshot.keys.get(digest)
            if key is not None and records:
                out[digest[:SHORT_HASH]] = KeyDestinations(key.team_id,
                                                           tuple(self._spec(r, seen, key.team_id) for r in records))
        return out

    def _spec(self, record: CallbackRecord | KeyCallbackRecord, seen: set[CacheKey],
              key_team: str | None = None) -> DestinationSpec:
        owner = ("key", record.token_hash) if isinstance(record, KeyCallbackRecord) else ("team", record.team_id)
        cache_key = (*owner, record.callback_name, record.callback_type.value)
        seen.add(cache_key)
        cached = self._spec_cache.get(cache_key)
        # A key moved to another team keeps its row (same updated_at) but needs the new team on its spec.
        if cached is not None and cached[0] == record.updated_at and cached[1].team == (
                key_team if isinstance(record, KeyCallbackRecord) else record.team_id):
            return cached[1]
        spec = self._build_spec(record, key_team)
        self._spec_cache[cache_key] = (record.updated_at, spec)
        return spec

    def _build_spec(self, record: CallbackRecord | KeyCallbackRecord, key_team: str | None) -> DestinationSpec:
        name, callback_type = record.callback_name, record.callback_type
        kind = None
        try:
            kind = self._registry.get(name)
            parsed = kind.parse(callback_vars(record, self._box))
        except (ValueError, SecretBoxError) as exc:
            # A row that cannot be used is reported, not fatal: the others keep logging. Its entry
            # still stands, so these spans do not fall back to the team's or the global destination.
            owner = (f"key {record.token_hash[:SHORT_HASH]}" if isinstance(record, KeyCallbackRecord)
                     else f"team {record.team_id}")
            log.error("%s callback %s/%s unusable, its spans are not sent to it nor to a team or global %s: %s",
                      owner, name, callback_type, name, exc)
            if isinstance(record, KeyCallbackRecord):
                return key_spec(record.token_hash[:SHORT_HASH], key_team, name, callback_type, kind, None,
                                usable=False)
            return unusable_spec(record.team_id, name, callback_type, kind)
        policy = entry_policy(record)
        if isinstance(record, KeyCallbackRecord):
            return key_spec(record.token_hash[:SHORT_HASH], key_team, name, callback_type, kind, parsed,
                            message_logging=policy)
        return team_spec(record.team_id, name, callback_type, kind, parsed, from_api=True, message_logging=policy)


NO_MODELS: frozenset[str] = frozenset()


def _administers(key: KeyRecord, admins: frozenset[tuple[str, str]]) -> bool:
    """Admin rights belong to the user in one team, so only that user's keys of that team carry them."""
    return key.user_id is not None and key.team_id is not None and (key.team_id, key.user_id) in admins


def _models(models: Iterable[str]) -> frozenset[str]:
    """An empty list (every model, the usual case) is one shared frozenset: CPython has no empty
    singleton, so two per key were 432 bytes a key for nothing."""
    return frozenset(models) or NO_MODELS


def utcnow() -> datetime:
    return datetime.now(UTC)
