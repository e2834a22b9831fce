"""``/user/*`` and ``/team/member_*``: users and their roles in teams, in LiteLLM's shapes.

A user is an id (and an email) that keys and team memberships name. What a user may administer
is its team roles alone: a key whose user is an ``admin`` member of the key's team administers that
team (see access.py). LiteLLM's proxy-wide ``user_role`` is kept as a label, and its admin roles
are refused by name: here the master key is the only proxy admin, and a 200 would say otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.params import FromQuery, JSONBody

from app.api.admin.context import Admin, AdminContext, Rules
from app.api.admin.key_logging import key_json
from app.api.admin.keys import KeyGenerate, generate_key, parse_duration
from app.api.admin.team_logging import team_json
from app.api.budgets import budget_for, budgets_of
from app.errors import InvalidRequest, NotFound
from app.store import AlreadyExists, MemberRecord, MemberRole, MemberWrite, TeamRecord, UserRecord

USER_ROLES = ("internal_user", "internal_user_viewer", "team", "customer")  # LiteLLM's, less its admin roles
_ADMIN_ROLES = ("proxy_admin", "proxy_admin_viewer")
_MEMBER_ROLES = tuple(r.value for r in MemberRole)


class Member(msgspec.Struct):
    role: str = MemberRole.USER.value
    user_id: str | None = None
    user_email: str | None = None


class MemberAdd(msgspec.Struct):
    team_id: str
    member: Member | list[Member]


class MemberDelete(msgspec.Struct):
    team_id: str
    user_id: str


class UserNew(msgspec.Struct):
    user_id: str | None = None
    user_email: str | None = None
    user_role: str = USER_ROLES[0]
    teams: list[str] = msgspec.field(default_factory=list)  # joined as "user" members
    auto_create_key: bool = True  # LiteLLM's default: /user/new answers with the user's first key
    key_alias: str | None = None
    models: list[str] = msgspec.field(default_factory=list)
    duration: str | None = None


class TeamMemberController(Controller):
    path = "/team"
    tags = ["team management"]

    @post("/member_add", status_code=200, opt={"body": MemberAdd})
    async def member_add(self, admin: Admin, data: JSONBody[MemberAdd]) -> dict[str, Any]:
        """Add members by ``user_id`` (or ``user_email``); an unknown user is created. All or none."""
        team = await admin.known_team(data.team_id)
        members = data.member if isinstance(data.member, list) else [data.member]
        writes = [_member_write(m, f"member[{i}]." if isinstance(data.member, list) else "member.")
                  for i, m in enumerate(members)]
        if not writes:
            raise InvalidRequest("member must name at least one member", param="member", code="invalid_value")
        try:
            users, added = await admin.store.add_members(data.team_id, writes)
        except AlreadyExists as exc:
            raise InvalidRequest(f"user {exc.args[0]!r} is already a member of team {data.team_id!r}",
                                 param="member", code="member_exists") from None
        await admin.refresh()
        return {**await team_with_members(admin, data.team_id, team),
                "updated_users": [user_json(u) for u in users],
                "updated_team_memberships": [membership_json(m) for m in added]}

    @post("/member_delete", status_code=200, opt={"body": MemberDelete})
    async def member_delete(self, admin: Admin, data: JSONBody[MemberDelete]) -> dict[str, Any]:
        team = await admin.known_team(data.team_id)
        if not await admin.store.remove_member(data.team_id, data.user_id):
            raise NotFound(f"user {data.user_id!r} is not a member of team {data.team_id!r}", param="user_id",
                           code="member_not_found")
        await admin.refresh()
        return await team_with_members(admin, data.team_id, team)


class UserController(Controller):
    path = "/user"
    tags = ["user management"]

    @post("/new", status_code=200, opt={"body": UserNew})
    async def user_new(self, admin: Admin, rules: Rules, data: JSONBody[UserNew]) -> dict[str, Any]:
        _check_user_new(data)
        for team_id in data.teams:
            await admin.known_team(team_id)
        try:
            user = await admin.store.create_user(data.user_id, data.user_email, data.user_role, data.teams)
        except AlreadyExists:
            raise InvalidRequest(f"user {data.user_id!r} already exists", param="user_id", code="user_exists",
                                 status=409) from None
        shown = {**user_json(user), "teams": list(data.teams), "key": None}
        if data.auto_create_key:
            made = await generate_key(admin, rules, KeyGenerate(key_alias=data.key_alias, models=data.models,
                                                                duration=data.duration, user_id=user.user_id))
            shown.update(key=made["key"], token=made["token"])
        await admin.refresh()
        return shown

    @get("/info")
    async def user_info(self, admin: Admin, user_id: FromQuery[str]) -> dict[str, Any]:
        user = await admin.store.get_user(user_id)
        if user is None:
            raise NotFound(f"user {user_id!r} does not exist", param="user_id", code="user_not_found")
        teams = await admin.store.user_teams(user_id)
        keys = await admin.store.user_keys(user_id)
        entries = await admin.store.list_key_callbacks(k.token_hash for k in keys)
        budgets = await budgets_of(admin.store, keys)
        return {"user_id": user_id, "user_info": {**user_json(user), "teams": [m.team_id for m in teams]},
                "keys": [key_json(k, entries.get(k.token_hash, ()), budget_for(budgets, k)) for k in keys],
                "teams": [membership_json(m) for m in teams]}


def _member_write(member: Member, where: str) -> MemberWrite:
    if member.role not in _MEMBER_ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(_MEMBER_ROLES)}", param=f"{where}role",
                             code="invalid_value")
    if not (member.user_id or "").strip() and not (member.user_email or "").strip():
        raise InvalidRequest("each member needs a user_id or a user_email", param=f"{where}user_id",
                             code="missing_required_parameter")
    return MemberWrite((member.user_id or "").strip() or None, (member.user_email or "").strip() or None,
                       MemberRole(member.role))


def _check_user_new(data: UserNew) -> None:
    """Everything that could refuse the user's key too, so a refused request creates no user."""
    if data.user_id is not None and not data.user_id.strip():
        raise InvalidRequest("user_id must not be empty", param="user_id", code="invalid_value")
    if data.duration:
        parse_duration(data.duration)
    if data.user_role in _ADMIN_ROLES:
        raise InvalidRequest(f"user_role {data.user_role!r} is not supported: the master key is Spangate's only "
                             "proxy admin; make the user a team admin with /team/member_add role 'admin'",
                             param="user_role", code="unsupported_field")
    if data.user_role not in USER_ROLES:
        raise InvalidRequest(f"user_role must be one of {', '.join(USER_ROLES)}", param="user_role",
                             code="invalid_value")


async def team_with_members(admin: AdminContext, team_id: str, team: TeamRecord | None,
                            budgets: Mapping[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The team as /team/info shows it, with ``members_with_roles`` (LiteLLM's list of members);
    ``budgets``: when the caller has read them already (``budgets_of``) with the team's among them."""
    if team is None:
        shown: dict[str, Any] = {"team_id": team_id, "source": "config"}
    else:
        budgets = budgets if budgets is not None else await budgets_of(admin.store, [team])
        shown = team_json(team, await admin.store.list_callbacks(team_id), budget_for(budgets, team))
    return {**shown, "members_with_roles": await members_with_roles(admin, team_id)}


async def members_with_roles(admin: AdminContext, team_id: str) -> list[dict[str, Any]]:
    return [{"user_id": m.user_id, "user_email": email, "role": m.role.value}
            for m, email in await admin.store.list_members(team_id)]


def user_json(user: UserRecord) -> dict[str, Any]:
    return {"user_id": user.user_id, "user_email": user.user_email, "user_role": user.user_role,
            "created_at": user.created_at.isoformat()}


def membership_json(member: MemberRecord) -> dict[str, Any]:
    return {"team_id": member.team_id, "user_id": member.user_id, "role": member.role.value}
