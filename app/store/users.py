"""The store's users and their roles in teams (LiteLLM's user table and team memberships).

A user is only an id (and an email) that keys and memberships point at; what a key may administer
is read from ``team_members`` when the snapshot is built, so a role change applies to every key of
that user at the watcher's next load, and to this instance at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.base import StoreBase
from app.store.records import AlreadyExists, KeyRecord, MemberRecord, MemberRole, MemberWrite, UserRecord
from app.store.rows import KEY_COLUMNS, MEMBER_COLUMNS, USER_COLUMNS, key_of, member_of, user_of, values_of
from app.store.schema import keys, team_members, users

DEFAULT_USER_ROLE = "internal_user"  # LiteLLM's default for /user/new and users member_add creates


class UserStore(StoreBase):
    async def create_user(self, user_id: str | None, user_email: str | None, user_role: str = DEFAULT_USER_ROLE,
                          teams: Sequence[str] = ()) -> UserRecord:
        """Raises AlreadyExists; a missing user_id becomes a random UUID, as in LiteLLM. The user joins
        ``teams`` as a ``user`` member in the same transaction."""
        record = UserRecord(user_id or str(uuid.uuid4()), user_email, user_role, self._now())
        async with self._writing("create_user") as write:
            if await _user_row(write.conn, record.user_id) is not None:
                raise AlreadyExists(f"user {record.user_id!r} already exists")
            await write.conn.execute(users.insert().values(values_of(record)))
            for team_id in dict.fromkeys(teams):
                member = MemberRecord(team_id, record.user_id, MemberRole.USER, record.created_at)
                await write.conn.execute(team_members.insert().values(values_of(member)))
        return record

    async def get_user(self, user_id: str) -> UserRecord | None:
        async with self._reading("get_user") as conn:
            return await _user_row(conn, user_id)

    async def add_members(self, team_id: str,
                          members: Sequence[MemberWrite]) -> tuple[list[UserRecord], list[MemberRecord]]:
        """All or none, in one transaction: each member's user (found by id, else by email, else
        created) and its membership. Raises AlreadyExists naming the first user already in the team."""
        async with self._writing("add_members") as write:
            found = [await self._user_for(write.conn, member) for member in members]
            added = []
            for user, member in zip(found, members, strict=True):
                if await _membership(write.conn, team_id, user.user_id) is not None:
                    raise AlreadyExists(user.user_id)
                record = MemberRecord(team_id, user.user_id, member.role, self._now())
                await write.conn.execute(team_members.insert().values(values_of(record)))
                added.append(record)
        return found, added

    async def _user_for(self, conn: AsyncConnection, member: MemberWrite) -> UserRecord:
        if member.user_id:
            user = await _user_row(conn, member.user_id)
        else:
            user = await _user_by_email(conn, member.user_email)
        if user is None:
            user = UserRecord(member.user_id or str(uuid.uuid4()), member.user_email, DEFAULT_USER_ROLE, self._now())
            await conn.execute(users.insert().values(values_of(user)))
        return user

    async def remove_member(self, team_id: str, user_id: str) -> bool:
        async with self._writing("remove_member") as write:
            gone = await write.conn.scalars(delete(team_members).where(
                team_members.c.team_id == team_id, team_members.c.user_id == user_id).returning(team_members.c.user_id))
            write.changed = bool(list(gone))
        return write.changed

    async def list_members(self, team_id: str) -> list[tuple[MemberRecord, str | None]]:
        """The team's members, oldest first, each with the user's email."""
        async with self._reading("list_members") as conn:
            rows = await conn.execute(select(*MEMBER_COLUMNS, users.c.user_email)
                                      .join(users, users.c.user_id == team_members.c.user_id, isouter=True)
                                      .where(team_members.c.team_id == team_id)
                                      .order_by(team_members.c.created_at, team_members.c.user_id))
            return [(member_of(row[:-1]), row[-1]) for row in rows]

    async def user_teams(self, user_id: str) -> list[MemberRecord]:
        async with self._reading("user_teams") as conn:
            rows = await conn.execute(select(*MEMBER_COLUMNS).where(team_members.c.user_id == user_id)
                                      .order_by(team_members.c.created_at, team_members.c.team_id))
            return [member_of(row) for row in rows]

    async def user_keys(self, user_id: str) -> list[KeyRecord]:
        async with self._reading("user_keys") as conn:
            rows = await conn.execute(select(*KEY_COLUMNS).where(keys.c.user_id == user_id)
                                      .order_by(keys.c.created_at, keys.c.token_hash))
            return [key_of(row) for row in rows]


async def ensure_user(conn: AsyncConnection, user_id: str, now: datetime) -> None:
    """A key's user, created when unknown (LiteLLM's /key/generate with ``user_id`` does the same)."""
    if await _user_row(conn, user_id) is None:
        await conn.execute(users.insert().values(values_of(UserRecord(user_id, None, DEFAULT_USER_ROLE, now))))


async def _user_row(conn: AsyncConnection, user_id: str) -> UserRecord | None:
    row = (await conn.execute(select(*USER_COLUMNS).where(users.c.user_id == user_id))).first()
    return None if row is None else user_of(row)


async def _user_by_email(conn: AsyncConnection, email: str | None) -> UserRecord | None:
    row = (await conn.execute(select(*USER_COLUMNS).where(users.c.user_email == email)
                              .order_by(users.c.created_at).limit(1))).first()
    return None if row is None else user_of(row)


async def _membership(conn: AsyncConnection, team_id: str, user_id: str) -> MemberRecord | None:
    row = (await conn.execute(select(*MEMBER_COLUMNS).where(team_members.c.team_id == team_id,
                                                            team_members.c.user_id == user_id))).first()
    return None if row is None else member_of(row)
