"""The key index marks a team's admin keys: a key whose user is an admin member of the key's own team.
The same user's key of another team, a member's key and a key without a user administer nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from app.config.settings import default_config
from app.store import KeyRecord, StoreSnapshot
from app.teams.auth import Authenticator
from app.teams.directory import TeamDirectory
from app.teams.state import TeamState
from exporters.registry import registry_of

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def key(token: str, team_id: str | None, user_id: str | None) -> KeyRecord:
    return KeyRecord(token, "sk-abcd…", None, team_id, (), {}, None, T0, user_id)


def test_only_an_admin_members_key_of_that_team_administers_it(tmp_path: Path) -> None:
    keys = [key("admin", "a", "boss"), key("elsewhere", "b", "boss"), key("member", "a", "dev"),
            key("plain", "a", None), key("teamless", None, "boss")]
    snapshot = StoreSnapshot(version=1, teams=MappingProxyType({}),
                             keys=MappingProxyType({k.token_hash: k for k in keys}), callbacks=MappingProxyType({}),
                             team_admins=frozenset({("a", "boss")}))
    auth = Authenticator("sk-master")
    TeamState(auth, TeamDirectory(default_config(tmp_path)), registry_of(()), None, True).apply(snapshot)
    assert {token: (c.user_id, c.team_admin) for token, c in auth.keys.items()} == {
        "admin": ("boss", True), "elsewhere": ("boss", False), "member": ("dev", False), "plain": (None, False),
        "teamless": ("boss", False)}
