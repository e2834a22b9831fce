"""The store's virtual keys (by hash) and each key's own logging entries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update

from app.store.base import StoreBase
from app.store.records import LIMIT_FIELDS, AlreadyExists, CallbackWrite, KeyCallbackRecord, KeyRecord, NotFound
from app.store.rows import (
    KEY_CALLBACK_COLUMNS,
    KEY_COLUMNS,
    grouped_by_key,
    in_request_order,
    key_callback_of,
    key_of,
    values_of,
)
from app.store.schema import key_callbacks, keys
from app.store.teams import limit_values
from app.store.users import ensure_user

KEY_FIELDS = frozenset({"key_alias", "team_id", "models", "metadata", "expires_at", *LIMIT_FIELDS})


class KeyStore(StoreBase):
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
        user_id: str | None = None,
        limits: dict[str, Any] | None = None,
    ) -> KeyRecord:
        """Raises AlreadyExists; team_id is not checked (it may name a config-only team). The key's
        own logging entries, and its user when new, are written in the same transaction: a key never
        exists without them."""
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
            user_id=user_id,
            **limit_values(limits),
        )
        async with self._writing("create_key") as write:
            if await write.conn.scalar(select(keys.c.token_hash).where(keys.c.token_hash == token_hash)):
                raise AlreadyExists("a key with this hash already exists")
            if user_id is not None:
                await ensure_user(write.conn, user_id, record.created_at)
            await write.conn.execute(keys.insert().values(values_of(record)))
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
        anchor = fields.get("budget_anchor")
        if anchor is not None and anchor.tzinfo is None:
            raise ValueError("budget_anchor must be time-zone aware")
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
        return key_of(row)

    async def list_keys(self, offset: int, limit: int, team_id: str | None = None) -> tuple[list[KeyRecord], int]:
        """One page of keys, oldest first, and how many there are in all (for the page count)."""
        where = [] if team_id is None else [keys.c.team_id == team_id]
        async with self._reading("list_keys") as conn:
            total = int(await conn.scalar(select(func.count()).select_from(keys).where(*where)) or 0)
            rows = await conn.execute(select(*KEY_COLUMNS).where(*where)
                                      .order_by(keys.c.created_at, keys.c.token_hash).offset(offset).limit(limit))
            return [key_of(row) for row in rows], total

    async def list_key_callbacks(self, token_hashes: Iterable[str]) -> dict[str, tuple[KeyCallbackRecord, ...]]:
        """The logging entries of the keys named, by hash; keys without any are left out."""
        wanted = set(token_hashes)
        if not wanted:
            return {}
        async with self._reading("list_key_callbacks") as conn:
            rows = await conn.execute(select(*KEY_CALLBACK_COLUMNS).where(key_callbacks.c.token_hash.in_(wanted))
                                      .order_by(key_callbacks.c.callback_name, key_callbacks.c.callback_type))
            return grouped_by_key(map(key_callback_of, rows))

    async def get_key(self, token_hash: str) -> KeyRecord | None:
        async with self._reading("get_key") as conn:
            row = (await conn.execute(select(*KEY_COLUMNS).where(keys.c.token_hash == token_hash))).first()
        return None if row is None else key_of(row)

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
        return in_request_order(token_hashes, deleted)
