"""The store of teams, virtual keys and their callbacks (SQLite or PostgreSQL through SQLAlchemy).

Every write runs in one transaction that first bumps ``store_state.version``; a write that turns
out to change nothing rolls back, so the version moves exactly when the data does. Watchers poll
that version (see ``watch.py``) and reload a ``StoreSnapshot`` when it moves.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, delete, func, select, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.engine import CONNECT_TIMEOUT_SECONDS, Engines, make_engines, prepare_schema
from app.store.records import (
    AlreadyExists,
    CallbackRecord,
    CallbackType,
    CallbackWrite,
    KeyCallbackRecord,
    KeyRecord,
    NotFound,
    StoreError,
    StoreSnapshot,
    StoreUnavailable,
    TeamRecord,
)
from app.store.schema import callbacks, key_callbacks, keys, state, teams

Clock = Callable[[], datetime]
TEAM_FIELDS = frozenset({"team_alias", "models", "metadata", "logging_disabled"})
KEY_FIELDS = frozenset({"key_alias", "team_id", "models", "metadata", "expires_at"})
_TEAM_CALLBACKS = callbacks  # the table, for methods whose ``callbacks`` argument hides its name


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _Write:
    """The connection of one write; set ``changed = False`` to roll back a write that did nothing."""

    __slots__ = ("changed", "conn")

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.changed = True


@asynccontextmanager
async def _mapped_errors(operation: str) -> AsyncIterator[None]:
    """The one boundary where driver and SQLAlchemy errors become ``StoreUnavailable``."""
    try:
        yield
    except StoreError:
        raise
    except StatementError as exc:
        if not isinstance(exc, DBAPIError) and isinstance(exc.orig, TypeError | ValueError):
            # Raised while binding our values (say, metadata that is not JSON): the caller's fault.
            raise ValueError(f"store {operation}: a value cannot be stored ({type(exc.orig).__name__})") from exc
        raise StoreUnavailable(f"store {operation} failed: {type(exc.orig or exc).__name__}") from exc
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        raise StoreUnavailable(f"store {operation} failed: {type(cause).__name__}") from exc


class Store:
    def __init__(self, engines: Engines, clock: Clock) -> None:
        self._engines = engines
        self._now = clock

    @classmethod
    async def open(cls, url: str, *, schema: str | None = None, clock: Clock = _utcnow,
                   connect_timeout: float = CONNECT_TIMEOUT_SECONDS) -> Store:
        """Connect, create or migrate the schema, and return a ready store."""
        engines = make_engines(url, schema=schema, connect_timeout=connect_timeout)
        try:
            async with _mapped_errors("open"):
                await prepare_schema(engines, url, schema, connect_timeout)
        except BaseException:
            await engines.base.dispose()
            raise
        return cls(engines, clock)

    async def close(self) -> None:
        await self._engines.base.dispose()

    @asynccontextmanager
    async def _writing(self, operation: str) -> AsyncIterator[_Write]:
        async with _mapped_errors(operation), self._engines.write.connect() as conn:
            await conn.execute(update(state).where(state.c.id == 1).values(version=state.c.version + 1))
            write = _Write(conn)
            yield write
            await (conn.commit() if write.changed else conn.rollback())

    @asynccontextmanager
    async def _reading(self, operation: str) -> AsyncIterator[AsyncConnection]:
        async with _mapped_errors(operation), self._engines.read.connect() as conn:
            yield conn

    # -- teams -----------------------------------------------------------------------------------

    async def create_team(
        self, team_id: str | None, team_alias: str | None, models: list[str], metadata: dict[str, Any],
        callbacks: Sequence[CallbackWrite] = (),
    ) -> TeamRecord:
        """Raises AlreadyExists; a missing team_id becomes a random UUID. ``callbacks`` (the team's
        ``metadata.logging``) are written in the same transaction: a team never exists without them."""
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
        )
        async with self._writing("create_team") as write:
            # Safe without catching IntegrityError: the version bump above serialises writers.
            if await write.conn.scalar(select(teams.c.team_id).where(teams.c.team_id == record.team_id)):
                raise AlreadyExists(f"team {record.team_id!r} already exists")
            await write.conn.execute(teams.insert().values(_values(record)))
            await self._insert_entries(write.conn, callbacks, team_id=record.team_id)
        return record

    async def get_team(self, team_id: str) -> TeamRecord | None:
        async with self._reading("get_team") as conn:
            row = (await conn.execute(select(*TEAM_COLUMNS).where(teams.c.team_id == team_id))).first()
        return None if row is None else _team(row)

    async def list_teams(self) -> list[TeamRecord]:
        async with self._reading("list_teams") as conn:
            rows = await conn.execute(select(*TEAM_COLUMNS).order_by(teams.c.created_at, teams.c.team_id))
            return [_team(row) for row in rows]

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
        return _team(row)

    async def set_logging_disabled(self, team_id: str, disabled: bool) -> TeamRecord:
        return await self.update_team(team_id, logging_disabled=disabled)

    async def delete_teams(self, team_ids: list[str]) -> list[str]:
        """Delete the teams that exist, with their callbacks and keys; returns the ids deleted."""
        async with self._writing("delete_teams") as write:
            found = await write.conn.scalars(
                delete(teams).where(teams.c.team_id.in_(set(team_ids))).returning(teams.c.team_id)
            )
            deleted = set(found)
            write.changed = bool(deleted)
            if deleted:
                await write.conn.execute(delete(callbacks).where(callbacks.c.team_id.in_(deleted)))
                team_keys = select(keys.c.token_hash).where(keys.c.team_id.in_(deleted))
                await write.conn.execute(delete(key_callbacks).where(key_callbacks.c.token_hash.in_(team_keys)))
                await write.conn.execute(delete(keys).where(keys.c.team_id.in_(deleted)))
        return _in_request_order(team_ids, deleted)

    # -- keys ------------------------------------------------------------------------------------

    async def create_key(
        self,
        token_hash: str,
        key_prefix: str,
        team_id: str | None,
        key_alias: str | None,
        models: list[str],
        metadata: dict[str, Any],
        expires_at: datetime | None,
        callbacks: Sequence[CallbackWrite] = (),
    ) -> KeyRecord:
        """Raises AlreadyExists; team_id is not checked (it may name a config-only team). The key's
        own logging entries are written in the same transaction: a key never exists without them."""
        if expires_at is not None and expires_at.tzinfo is None:
            raise ValueError("expires_at must be time-zone aware")
        record = KeyRecord(
            token_hash=token_hash,
            key_prefix=key_prefix,
            key_alias=key_alias,
            team_id=team_id,
            models=tuple(models),
            metadata=dict(metadata),
            expires_at=expires_at,
            created_at=self._now(),
        )
        async with self._writing("create_key") as write:
            if await write.conn.scalar(select(keys.c.token_hash).where(keys.c.token_hash == token_hash)):
                raise AlreadyExists("a key with this hash already exists")
            await write.conn.execute(keys.insert().values(_values(record)))
            await self._insert_entries(write.conn, callbacks, token_hash=token_hash)
        return record

    async def update_key(self, token_hash: str, *, callbacks: Sequence[CallbackWrite] | None = None,
                         **fields: Any) -> KeyRecord:
        """Set any of key_alias, team_id, models, metadata, expires_at; ``callbacks`` (when given)
        replaces all the key's logging entries in the same transaction. Raises NotFound."""
        unknown = set(fields) - KEY_FIELDS
        if unknown:
            raise TypeError(f"update_key got unknown fields {sorted(unknown)}; allowed: {sorted(KEY_FIELDS)}")
        expires = fields.get("expires_at")
        if expires is not None and expires.tzinfo is None:
            raise ValueError("expires_at must be time-zone aware")
        values = {name: list(value) if name == "models" else value for name, value in fields.items()}
        async with self._writing("update_key") as write:
            if values:
                statement = update(keys).where(keys.c.token_hash == token_hash).values(values).returning(*KEY_COLUMNS)
            else:
                statement = select(*KEY_COLUMNS).where(keys.c.token_hash == token_hash)
            row = (await write.conn.execute(statement)).first()
            if row is None:
                raise NotFound("no such key")
            write.changed = bool(values) or callbacks is not None
            if callbacks is not None:
                await write.conn.execute(delete(key_callbacks).where(key_callbacks.c.token_hash == token_hash))
                await self._insert_entries(write.conn, callbacks, token_hash=token_hash)
        return _key(row)

    async def _insert_entries(self, conn: AsyncConnection, entries: Sequence[CallbackWrite], **owner: str) -> None:
        """A team's (``team_id=``) or a key's (``token_hash=``) logging entries, in the caller's write."""
        if not entries:
            return
        now = self._now()
        table = _TEAM_CALLBACKS if "team_id" in owner else key_callbacks
        rows = [{**owner, "callback_name": e.callback_name,
                 "callback_type": _callback_type(e.callback_type).value, "vars_ciphertext": e.vars_ciphertext,
                 "secret_var_names": sorted(e.secret_var_names), "plain_vars": dict(e.plain_vars),
                 "updated_at": now} for e in entries]
        await conn.execute(table.insert(), rows)

    async def list_keys(self, offset: int, limit: int, team_id: str | None = None) -> tuple[list[KeyRecord], int]:
        """One page of keys, oldest first, and how many there are in all (for the page count)."""
        where = [] if team_id is None else [keys.c.team_id == team_id]
        async with self._reading("list_keys") as conn:
            total = int(await conn.scalar(select(func.count()).select_from(keys).where(*where)) or 0)
            rows = await conn.execute(select(*KEY_COLUMNS).where(*where)
                                      .order_by(keys.c.created_at, keys.c.token_hash).offset(offset).limit(limit))
            return [_key(row) for row in rows], total

    async def list_key_callbacks(self, token_hashes: Iterable[str]) -> dict[str, tuple[KeyCallbackRecord, ...]]:
        """The logging entries of the keys named, by hash; keys without any are left out."""
        wanted = set(token_hashes)
        if not wanted:
            return {}
        async with self._reading("list_key_callbacks") as conn:
            rows = await conn.execute(select(*KEY_CALLBACK_COLUMNS).where(key_callbacks.c.token_hash.in_(wanted))
                                      .order_by(key_callbacks.c.callback_name, key_callbacks.c.callback_type))
            return _by_key(map(_key_callback, rows))

    async def get_key(self, token_hash: str) -> KeyRecord | None:
        async with self._reading("get_key") as conn:
            row = (await conn.execute(select(*KEY_COLUMNS).where(keys.c.token_hash == token_hash))).first()
        return None if row is None else _key(row)

    async def delete_keys(self, token_hashes: list[str]) -> list[str]:
        """Returns the hashes that existed and were deleted."""
        async with self._writing("delete_keys") as write:
            found = await write.conn.scalars(
                delete(keys).where(keys.c.token_hash.in_(set(token_hashes))).returning(keys.c.token_hash)
            )
            deleted = set(found)
            write.changed = bool(deleted)
            if deleted:
                await write.conn.execute(delete(key_callbacks).where(key_callbacks.c.token_hash.in_(deleted)))
        return _in_request_order(token_hashes, deleted)

    # -- team callbacks --------------------------------------------------------------------------

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
        kind = _callback_type(callback_type)
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
            return [_callback(row) for row in rows]

    async def list_team_callbacks(self, team_ids: Iterable[str]) -> dict[str, tuple[CallbackRecord, ...]]:
        """The callbacks of the teams named, by team; teams without any are left out."""
        wanted = set(team_ids)
        if not wanted:
            return {}
        async with self._reading("list_team_callbacks") as conn:
            rows = await conn.execute(select(*CALLBACK_COLUMNS).where(callbacks.c.team_id.in_(wanted))
                                      .order_by(callbacks.c.callback_name, callbacks.c.callback_type))
            grouped: dict[str, list[CallbackRecord]] = {}
            for record in map(_callback, rows):
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

    # -- whole-store reads -----------------------------------------------------------------------

    async def version(self) -> int:
        """One tiny query: what watchers poll."""
        async with _mapped_errors("version"), self._engines.base.connect() as conn:
            return int(await conn.scalar(select(state.c.version)) or 0)

    async def snapshot(self) -> StoreSnapshot:
        async with self._reading("snapshot") as conn:
            version = int(await conn.scalar(select(state.c.version)) or 0)
            team_map = {team.team_id: team for team in map(_team, await conn.execute(select(*TEAM_COLUMNS)))}
            # Each row brings its own copy of a team id and of a callback name: one string each instead,
            # as the snapshot is kept until the next one (a few hundred bytes a team).
            names = {team_id: team_id for team_id in team_map}
            key_map = {key.token_hash: key for key in (_key_named(row, names) for row in await conn.execute(
                select(*KEY_COLUMNS)))}
            ordered = select(*CALLBACK_COLUMNS).order_by(
                callbacks.c.team_id, callbacks.c.callback_name, callbacks.c.callback_type
            )
            by_team: dict[str, list[CallbackRecord]] = {}
            for callback in (_callback_named(row, names) for row in await conn.execute(ordered)):
                by_team.setdefault(callback.team_id, []).append(callback)
            by_key = _by_key(map(_key_callback, await conn.execute(select(*KEY_CALLBACK_COLUMNS).order_by(
                key_callbacks.c.token_hash, key_callbacks.c.callback_name, key_callbacks.c.callback_type))))
        return StoreSnapshot(
            version=version,
            teams=MappingProxyType(team_map),
            keys=MappingProxyType(key_map),
            callbacks=MappingProxyType({team: tuple(entries) for team, entries in by_team.items()}),
            key_callbacks=MappingProxyType(by_key),
        )


def _callback_type(value: str) -> CallbackType:
    try:
        return CallbackType(value)
    except ValueError:
        allowed = ", ".join(t.value for t in CallbackType)
        raise ValueError(f"callback_type must be one of {allowed}, not {value!r}") from None


def _in_request_order(requested: list[str], found: set[str]) -> list[str]:
    return [item for item in dict.fromkeys(requested) if item in found]


def _values(record: TeamRecord | KeyRecord) -> dict[str, Any]:
    return {field.name: getattr(record, field.name) for field in fields(record)}


def _columns(table: Table, record_type: type) -> tuple[ColumnElement[Any], ...]:
    """The table's columns in the record's field order, so rows unpack straight into records
    (the column types already return tuples, dicts, aware datetimes and CallbackType)."""
    return tuple(table.c[field.name] for field in fields(record_type))


TEAM_COLUMNS = _columns(teams, TeamRecord)
KEY_COLUMNS = _columns(keys, KeyRecord)
CALLBACK_COLUMNS = _columns(callbacks, CallbackRecord)
KEY_CALLBACK_COLUMNS = _columns(key_callbacks, KeyCallbackRecord)


def _team(row: Row[Any]) -> TeamRecord:
    return TeamRecord(*row)


def _key(row: Row[Any]) -> KeyRecord:
    return KeyRecord(*row)


def _callback(row: Row[Any]) -> CallbackRecord:
    return CallbackRecord(*row)


_KEY_TEAM_ID = [f.name for f in fields(KeyRecord)].index("team_id")
_CALLBACK_TEAM_ID, _CALLBACK_NAME = (
    [f.name for f in fields(CallbackRecord)].index(name) for name in ("team_id", "callback_name"))


def _key_named(row: Row[Any], names: dict[str, str]) -> KeyRecord:
    """``_key`` with the team id taken from ``names`` (the snapshot's one copy) when it is there."""
    values = list(row)
    values[_KEY_TEAM_ID] = names.get(values[_KEY_TEAM_ID], values[_KEY_TEAM_ID])
    return KeyRecord(*values)


def _callback_named(row: Row[Any], names: dict[str, str]) -> CallbackRecord:
    """``_callback`` with team id and callback name shared through ``names`` (added when new)."""
    values = list(row)
    for index in (_CALLBACK_TEAM_ID, _CALLBACK_NAME):
        values[index] = names.setdefault(values[index], values[index])
    return CallbackRecord(*values)


def _key_callback(row: Row[Any]) -> KeyCallbackRecord:
    return KeyCallbackRecord(*row)


def _by_key(records: Iterable[KeyCallbackRecord]) -> dict[str, tuple[KeyCallbackRecord, ...]]:
    grouped: dict[str, list[KeyCallbackRecord]] = {}
    for record in records:
        grouped.setdefault(record.token_hash, []).append(record)
    return {token: tuple(entries) for token, entries in grouped.items()}
