"""The key index puts the key's and its team's limits on the Caller: only scopes that set a limit field,
the key's first, labelled by alias (else the short hash or the team id), anchored where their periods began."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from app.calls.caller import Caller
from app.calls.limits import BudgetDuration, Scope, ScopeLimits
from app.config.settings import default_config
from app.store import KeyRecord, StoreSnapshot, TeamRecord
from app.teams.auth import Authenticator
from app.teams.directory import TeamDirectory
from app.teams.limits import NO_LIMITS, caller_limits, key_scope, team_scope
from app.teams.state import TeamState
from exporters.registry import registry_of

T0 = datetime(2025, 1, 1, tzinfo=UTC)
T1 = datetime(2025, 3, 1, tzinfo=UTC)
HASH = "ab" * 32


def key(token: str = HASH, team_id: str | None = None, **limits: object) -> KeyRecord:
    return KeyRecord(token, "sk-abcd…", None, team_id, (), {}, None, T0, **limits)  # type: ignore[arg-type]


def team(team_id: str, alias: str | None = None, **limits: object) -> TeamRecord:
    return TeamRecord(team_id, alias, (), {}, False, T0, T0, **limits)  # type: ignore[arg-type]


def index(keys: list[KeyRecord], teams: list[TeamRecord], tmp_path: Path) -> dict[str, Caller]:
    snapshot = StoreSnapshot(version=1, teams=MappingProxyType({t.team_id: t for t in teams}),
                             keys=MappingProxyType({k.token_hash: k for k in keys}), callbacks=MappingProxyType({}))
    auth = Authenticator("sk-master")
    TeamState(auth, TeamDirectory(default_config(tmp_path)), registry_of(()), None, True).apply(snapshot)
    return dict(auth.keys)


def test_keys_and_teams_without_limits_share_the_one_empty_tuple(tmp_path: Path) -> None:
    callers = index([key("a" * 64, "t"), key("b" * 64)], [team("t")], tmp_path)
    assert all(c.limits is NO_LIMITS for c in callers.values())


def test_the_keys_scope_comes_first_then_its_teams(tmp_path: Path) -> None:
    capped = replace(key(team_id="t", max_budget=1.5, budget_duration="30d", budget_anchor=T1, rpm_limit=10),
                     key_alias="ci")
    limits = index([capped], [team("t", "Team T", tpm_limit=1000, max_parallel_requests=2)], tmp_path)[HASH].limits
    assert limits == (
        ScopeLimits(Scope.KEY, HASH, "ci", max_budget=1.5, budget_duration=BudgetDuration(30, "d"),
                    budget_anchor=T1, rpm_limit=10),
        ScopeLimits(Scope.TEAM, "t", "Team T", budget_anchor=T0, tpm_limit=1000, max_parallel_requests=2))
    assert [s.counter for s in limits] == [f"key:{HASH}", "team:t"]


def test_a_scope_without_alias_is_labelled_by_short_hash_or_team_id_and_anchored_at_creation() -> None:
    assert key_scope(key(soft_budget=0.5)).label == HASH[:16]
    assert team_scope(team("t", max_budget=0)).label == "t"
    assert key_scope(key(soft_budget=0.5)).budget_anchor == T0


def test_only_the_scopes_that_set_something_are_carried(tmp_path: Path) -> None:
    teams = [team("t", rpm_limit=5), team("u")]
    callers = index([key("a" * 64, "t"), key("b" * 64, "u", budget_duration="1mo"), key("c" * 64, "t", tpm_limit=0)],
                    teams, tmp_path)
    assert [s.scope for s in callers["a" * 64].limits] == [Scope.TEAM]
    assert [s.scope for s in callers["b" * 64].limits] == [Scope.KEY]  # a duration alone decides the period
    assert [(s.scope, s.tpm_limit, s.rpm_limit) for s in callers["c" * 64].limits] == [
        (Scope.KEY, 0, None), (Scope.TEAM, None, 5)]


def test_teams_limits_are_built_once_and_shared_by_its_keys(tmp_path: Path) -> None:
    callers = index([key("a" * 64, "t"), key("b" * 64, "t")], [team("t", max_budget=3)], tmp_path)
    assert callers["a" * 64].limits[0] is callers["b" * 64].limits[0]


def test_a_stored_duration_that_does_not_parse_is_one_period_for_ever() -> None:
    assert key_scope(key(max_budget=1, budget_duration="fortnight")).budget_duration is None
    assert caller_limits(key(), None) is NO_LIMITS
