"""A team's logging callbacks, one entry per name and type (what the admin API's callback routes write)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, select, update

from app.store.base import StoreBase
from app.store.records import CallbackRecord
from app.store.rows import CALLBACK_COLUMNS, callback_of, callback_type_of
from app.store.schema import callbacks


class TeamCallbackStore(StoreBase):
    async def set_callback(
        self,
        team_id: str,
        callback_name: str,
        callback_type: str,
        vars_ciphertext: str | None,
        secret_var_names: Iterable[str],
        plain_vars: Mapping[str, Any],
    ) -> bool:
        """Insert, or replace the entry with the same name and type; True when it replaced one."""
        kind = callback_type_of(callback_type)
        values = {
            "vars_ciphertext": vars_ciphertext,
            "secret_var_names": sorted(secret_var_names),
            "plain_vars": dict(plain_vars),
            "updated_at": self._now(),
        }
        key = {"team_id": team_id, "callback_name": callback_name, "callback_type": kind.value}
        async with self._writing("set_callback") as write:
            result = await write.conn.execute(
                update(callbacks).where(*(callbacks.c[column] == value for column, value in key.items())).values(values)
            )
            replaced = result.rowcount == 1
            if not replaced:
                await write.conn.execute(callbacks.insert().values(**key, **values))
        return replaced

    async def list_callbacks(self, team_id: str) -> list[CallbackRecord]:
        async with self._reading("list_callbacks") as conn:
            rows = await conn.execute(
                select(*CALLBACK_COLUMNS)
                .where(callbacks.c.team_id == team_id)
                .order_by(callbacks.c.callback_name, callbacks.c.callback_type)
            )
            return [callback_of(row) for row in rows]

    async def list_team_callbacks(self, team_ids: Iterable[str]) -> dict[str, tuple[CallbackRecord, ...]]:
        """The callbacks of the teams named, by team; teams without any are left out."""
        wanted = set(team_ids)
        if not wanted:
            return {}
        async with self._reading("list_team_callbacks") as conn:
            rows = await conn.execute(select(*CALLBACK_COLUMNS).where(callbacks.c.team_id.in_(wanted))
                                      .order_by(callbacks.c.callback_name, callbacks.c.callback_type))
            grouped: dict[str, list[CallbackRecord]] = {}
            for record in map(callback_of, rows):
                grouped.setdefault(record.team_id, []).append(record)
        return {team: tuple(entries) for team, entries in grouped.items()}

    async def delete_callback(self, team_id: str, callback_name: str) -> int:
        """Remove the team's entries of that name, of every type; returns how many went."""
        async with self._writing("delete_callback") as write:
            result = await write.conn.execute(
                delete(callbacks).where(callbacks.c.team_id == team_id, callbacks.c.callback_name == callback_name)
            )
            write.changed = result.rowcount > 0
        return result.rowcount
