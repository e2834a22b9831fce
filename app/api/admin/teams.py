"""``/team/*``: teams as LiteLLM's admin API has them, their ``metadata.logging`` included (see
``team_logging.py``), and their keys as /team/info lists them."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.params import FromQuery, JSONBody

from app.api.admin.context import Admin, Rules
from app.api.admin.key_logging import key_json
from app.api.admin.team_logging import split_team_metadata, team_json
from app.api.admin.users import team_with_members
from app.api.budgets import LimitFields, budget_for, budgets_of, limit_changes
from app.errors import InvalidRequest, NotFound
from app.store import AlreadyExists
from app.store import NotFound as StoreNotFound
from app.teams.state import utcnow


class TeamNew(LimitFields):
    team_id: str | None = None
    team_alias: str | None = None
    models: list[str] = msgspec.field(default_factory=list)
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class TeamUpdate(LimitFields, kw_only=True):  # kw_only: a required field after LimitFields' defaults
    team_id: str
    team_alias: str | None = None
    models: list[str] | None = None
    metadata: dict[str, Any] | None = None  # replaces the metadata; its ``logging``, when given, the callbacks


class TeamDelete(msgspec.Struct):
    team_ids: list[str]


def team_not_found(team_id: str) -> NotFound:
    return NotFound(f"team {team_id!r} does not exist", param="team_id", code="team_not_found")


class TeamController(Controller):
    path = "/team"
    tags = ["team management"]

    @post("/new", status_code=200, opt={"body": TeamNew})
    async def team_new(self, admin: Admin, rules: Rules, data: JSONBody[TeamNew]) -> dict[str, Any]:
        if data.team_id is not None and not data.team_id.strip():
            raise InvalidRequest("team_id must not be empty", param="team_id")
        team_id = data.team_id or str(uuid.uuid4())  # chosen here: the callbacks' secrets are bound to it
        # Checked in full before anything is written: a typo in metadata.logging saves no team at all.
        metadata, entries = await split_team_metadata(rules, team_id, data.metadata, ())
        limits = limit_changes(data, utcnow(), update=False)
        try:
            team = await admin.store.create_team(team_id, data.team_alias, data.models, metadata, entries or (),
                                                 limits=limits)
        except AlreadyExists:
            raise InvalidRequest(f"team {data.team_id!r} already exists", param="team_id",
                                 code="team_exists", status=409) from None
        await admin.refresh()
        return team_json(team, entries or (), budget_for(await budgets_of(admin.store, [team]), team))

    @get("/info")
    async def team_info(self, admin: Admin, team_id: FromQuery[str]) -> dict[str, Any]:
        team = await admin.known_team(team_id)
        snapshot = admin.snapshot
        records = [k for k in snapshot.keys.values() if k.team_id == team_id] if snapshot else []
        budgets = await budgets_of(admin.store, [*records, *([team] if team else [])])
        keys = [key_json(k, snapshot.key_callbacks.get(k.token_hash, ()) if snapshot else (), budget_for(budgets, k))
                for k in records]
        return {"team_id": team_id, "team_info": await team_with_members(admin, team_id, team, budgets),
                "keys": keys}

    @get("/list")
    async def team_list(self, admin: Admin) -> list[dict[str, Any]]:
        teams = await admin.store.list_teams()
        entries = await admin.store.list_team_callbacks(t.team_id for t in teams)
        budgets = await budgets_of(admin.store, teams)
        return [team_json(t, entries.get(t.team_id, ()), budget_for(budgets, t)) for t in teams]

    @post("/update", status_code=200, opt={"body": TeamUpdate})
    async def team_update(self, admin: Admin, rules: Rules, data: JSONBody[TeamUpdate]) -> dict[str, Any]:
        if await admin.store.get_team(data.team_id) is None:  # a 404 before metadata.logging's 400s
            raise team_not_found(data.team_id)
        fields = {k: v for k, v in (("team_alias", data.team_alias), ("models", data.models)) if v is not None}
        fields.update(limit_changes(data, utcnow(), update=True))
        stored = await admin.store.list_callbacks(data.team_id)
        entries = None
        if data.metadata is not None:
            fields["metadata"], entries = await split_team_metadata(rules, data.team_id, data.metadata, stored)
        try:
            team = await admin.store.update_team(data.team_id, callbacks=entries, **fields)
        except StoreNotFound:  # deleted meanwhile
            raise team_not_found(data.team_id) from None
        await admin.refresh()
        return team_json(team, stored if entries is None else entries,
                         budget_for(await budgets_of(admin.store, [team]), team))

    @post("/delete", status_code=200)
    async def team_delete(self, admin: Admin, data: JSONBody[TeamDelete]) -> dict[str, Any]:
        deleted = await admin.store.delete_teams(data.team_ids)
        missing = [t for t in data.team_ids if t not in deleted]
        if missing and not deleted:
            raise NotFound(f"no such team: {', '.join(missing)}", param="team_ids", code="team_not_found")
        await admin.refresh()
        return {"deleted_teams": deleted, "not_found": missing}
