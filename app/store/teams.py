"""The store's teams: create, read, update and delete; a team's callbacks and keys go with it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update

from app.store.base import StoreBase
from app.store.records import LIMIT_FIELDS, AlreadyExists, CallbackWrite, NotFound, TeamRecord
from app.store.rows import TEAM_COLUMNS, in_request_order, team_of, values_of
from app.store.schema import callbacks, key_callbacks, keys, team_members, teams

TEAM_FIELDS = frozenset({"team_alias", "models", "metadata", "logging_disabled", *LIMIT_FIELDS})
_TEAM_CALLBACKS = callbacks  # the table, for methods whose ``callbacks`` argument hides its name


class TeamStore(StoreBase):
    async def create_team(
        self, team_id: str | None, team_alias: str | None, models: list[str], metadata: dict[str, Any],
        callbacks: Sequence[CallbackWrite] = (), limits: dict[str, Any] | None = None,
    ) -> TeamRecord:
        """Raises AlreadyExists; a missing team_id becomes a random UUID. ``callbacks`` (the team's
        ``metadata.logging``) are written in the same transaction: a team never exists without them.
        ``limits``: any of ``records.LIMIT_FIELDS``."""
        if team_id == "":
            raise ValueError("team_id must not be empty")
        now = self._now()
        record = TeamRecord(
            team_id=team_id or str(uuid.uuid4()),
            team_alias=team_alias,
            models=tuple(models),
            metadata=dict(metadata),
            logging_disabled=False,
            created_at=now,
            updated_at=now,
            **limit_values(limits),
        )
        async with self._writing("create_team") as write:
            # Safe without catching IntegrityError: the version bump above serialises writers.
            if await write.conn.scalar(select(teams.c.team_id).where(teams.c.team_id == record.team_id)):
                raise AlreadyExists(f"team {record.team_id!r} already exists")
            await write.conn.execute(teams.insert().values(values_of(record)))
            await self._insert_entries(write.conn, callbacks, team_id=record.team_id)
        return record

    async def get_team(self, team_id: str) -> TeamRecord | None:
        async with self._reading("get_team") as conn:
            row = (await conn.execute(select(*TEAM_COLUMNS).where(teams.c.team_id == team_id))).first()
        return None if row is None else team_of(row)

    async def list_teams(self) -> list[TeamRecord]:
        async with self._reading("list_teams") as conn:
            rows = await conn.execute(select(*TEAM_COLUMNS).order_by(teams.c.created_at, teams.c.team_id))
            return [team_of(row) for row in rows]

    async def update_team(self, team_id: str, *, callbacks: Sequence[CallbackWrite] | None = None,
                          **fields: Any) -> TeamRecord:
        """Set any of team_alias, models, metadata, logging_disabled; ``callbacks`` (when given)
        replaces all the team's callbacks in the same transaction. Raises NotFound."""
        unknown = set(fields) - TEAM_FIELDS
        if unknown:
            raise TypeError(f"update_team got unknown fields {sorted(unknown)}; allowed: {sorted(TEAM_FIELDS)}")
        values: dict[str, Any] = {"updated_at": self._now()}
        for name, value in fields.items():
            values[name] = list(value) if name == "models" else value
        async with self._writing("update_team") as write:
            statement = update(teams).where(teams.c.team_id == team_id).values(values).returning(*TEAM_COLUMNS)
            row = (await write.conn.execute(statement)).first()
            if row is None:
                raise NotFound(f"team {team_id!r} not found")
            if callbacks is not None:
                await write.conn.execute(delete(_TEAM_CALLBACKS).where(_TEAM_CALLBACKS.c.team_id == team_id))
                await self._insert_entries(write.conn, callbacks, team_id=team_id)
        return team_of(row)

    async def set_logging_disabled(self, team_id: str, disabled: bool) -> TeamRecord:
        return await self.update_team(team_id, logging_disabled=disabled)

    async def delete_teams(self, team_ids: list[str]) -> list[str]:
        """Delete the teams that exist, with their callbacks, keys and memberships (the users stay);
        returns the ids deleted."""
        async with self._writing("delete_teams") as write:
            found = await write.conn.scalars(
                delete(teams).where(teams.c.team_id.in_(set(team_ids))).returning(teams.c.team_id)
            )
            deleted = set(found)
            write.changed = bool(deleted)
            if deleted:
                await write.conn.execute(delete(callbacks).where(callbacks.c.team_id.in_(deleted)))
                await write.conn.execute(delete(team_members).where(team_members.c.team_id.in_(deleted)))
                team_keys = select(keys.c.token_hash).where(keys.c.team_id.in_(deleted))
                await write.conn.execute(delete(key_callbacks).where(key_callbacks.c.token_hash.in_(team_keys)))
                await write.conn.execute(delete(keys).where(keys.c.team_id.in_(deleted)))
        return in_request_order(team_ids, deleted)


def limit_values(limits: dict[str, Any] | None) -> dict[str, Any]:
    unknown = set(limits or ()) - set(LIMIT_FIELDS)
    if unknown:
        raise TypeError(f"unknown limit fields {sorted(unknown)}; allowed: {list(LIMIT_FIELDS)}")
    return dict(limits or {})
