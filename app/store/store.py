"""The store of teams, virtual keys and their callbacks (SQLite or PostgreSQL through SQLAlchemy).

Every write runs in one transaction that first bumps ``store_state.version``; a write that turns
out to change nothing rolls back, so the version moves exactly when the data does. Watchers poll
that version (see ``watch.py``) and reload a ``StoreSnapshot`` when it moves.

``Store`` is its parts joined: ``teams.py``, ``keys.py``, ``callbacks.py`` and ``users.py`` each handle one kind of
record through the transactions of ``base.py`` (rows become records in ``rows.py``); opening,
closing, the version and the snapshot are here.
"""

from __future__ import annotations

from types import MappingProxyType

from sqlalchemy import select

from app.store.base import Clock, mapped_errors, utcnow
from app.store.callbacks import TeamCallbackStore
from app.store.engine import CONNECT_TIMEOUT_SECONDS, make_engines, prepare_schema
from app.store.keys import KeyStore
from app.store.records import CallbackRecord, MemberRole, StoreSnapshot
from app.store.rows import (
    CALLBACK_COLUMNS,
    KEY_CALLBACK_COLUMNS,
    KEY_COLUMNS,
    TEAM_COLUMNS,
    callback_named,
    grouped_by_key,
    key_callback_of,
    key_named,
    team_of,
)
from app.store.schema import callbacks, key_callbacks, state, team_members
from app.store.spend import SpendStore
from app.store.teams import TeamStore
from app.store.users import UserStore


class Store(TeamStore, KeyStore, TeamCallbackStore, UserStore, SpendStore):
    @classmethod
    async def open(cls, url: str, *, schema: str | None = None, clock: Clock = utcnow,
                   connect_timeout: float = CONNECT_TIMEOUT_SECONDS) -> Store:
        """Connect, create or migrate the schema, and return a ready store."""
        engines = make_engines(url, schema=schema, connect_timeout=connect_timeout)
        try:
            async with mapped_errors("open"):
                await prepare_schema(engines, url, schema, connect_timeout)
        except BaseException:
            await engines.base.dispose()
            raise
        return cls(engines, clock)

    async def close(self) -> None:
        await self._engines.base.dispose()

    async def version(self) -> int:
        """One tiny query: what watchers poll."""
        async with mapped_errors("version"), self._engines.base.connect() as conn:
            return int(await conn.scalar(select(state.c.version)) or 0)

    async def snapshot(self) -> StoreSnapshot:
        async with self._reading("snapshot") as conn:
            version = int(await conn.scalar(select(state.c.version)) or 0)
            team_map = {team.team_id: team for team in map(team_of, await conn.execute(select(*TEAM_COLUMNS)))}
            # Each row brings its own copy of a team id and of a callback name: one string each instead,
            # as the snapshot is kept until the next one (a few hundred bytes a team).
            names = {team_id: team_id for team_id in team_map}
            key_map = {key.token_hash: key for key in (key_named(row, names) for row in await conn.execute(
                select(*KEY_COLUMNS)))}
            ordered = select(*CALLBACK_COLUMNS).order_by(
                callbacks.c.team_id, callbacks.c.callback_name, callbacks.c.callback_type
            )
            by_team: dict[str, list[CallbackRecord]] = {}
            for callback in (callback_named(row, names) for row in await conn.execute(ordered)):
                by_team.setdefault(callback.team_id, []).append(callback)
            by_key = grouped_by_key(map(key_callback_of, await conn.execute(select(*KEY_CALLBACK_COLUMNS).order_by(
                key_callbacks.c.token_hash, key_callbacks.c.callback_name, key_callbacks.c.callback_type))))
            admins = frozenset(map(tuple, await conn.execute(select(team_members.c.team_id, team_members.c.user_id)
                                                             .where(team_members.c.role == MemberRole.ADMIN.value))))
        return StoreSnapshot(
            version=version,
            teams=MappingProxyType(team_map),
            keys=MappingProxyType(key_map),
            callbacks=MappingProxyType({team: tuple(entries) for team, entries in by_team.items()}),
            key_callbacks=MappingProxyType(by_key),
            team_admins=admins,
        )
