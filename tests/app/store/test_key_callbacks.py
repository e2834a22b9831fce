"""A key's own logging entries in the store (SQLite and PostgreSQL): written with the key in one
transaction, replaced whole by an update, gone with the key or its team, in every snapshot, and
added to a database created before they existed by the v2 migration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.store import CallbackType, CallbackWrite, KeyCallbackRecord, NotFound, Store
from app.store.schema import MIGRATIONS
from tests.app.store.conftest import Backend

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def entry(name: str = "langfuse", kind: str = "success", host: str = "h") -> CallbackWrite:
    return CallbackWrite(name, kind, f"v1.{name}.{kind}", ("langfuse_secret_key",), {"langfuse_host": host})


async def add_key(store: Store, token: str, team_id: str | None = None, callbacks: tuple[CallbackWrite, ...] = ()):
    return await store.create_key(token, "sk-abcd…", team_id, None, [], {"tag": token}, None, callbacks=callbacks)


async def test_key_and_its_entries_are_written_together_and_read_back(store: Store):
    await add_key(store, "h1", "team-a", (entry(), entry("langsmith", "failure")))
    await add_key(store, "h2")
    assert await store.version() == 2  # one write per key, entries included
    entries = await store.list_key_callbacks(["h1", "h2", "missing"])
    assert entries == {"h1": (
        KeyCallbackRecord("h1", "langfuse", CallbackType.SUCCESS, "v1.langfuse.success", ("langfuse_secret_key",),
                          {"langfuse_host": "h"}, at(2)),
        KeyCallbackRecord("h1", "langsmith", CallbackType.FAILURE, "v1.langsmith.failure", ("langfuse_secret_key",),
                          {"langfuse_host": "h"}, at(2)))}
    snapshot = await store.snapshot()
    assert snapshot.key_callbacks == entries
    assert await store.list_key_callbacks([]) == {}


async def test_update_replaces_the_entries_only_when_given(store: Store):
    await add_key(store, "h1", None, (entry(), entry("langsmith")))
    renamed = await store.update_key("h1", key_alias="ci", metadata={"tag": "new"})
    assert (renamed.key_alias, renamed.metadata) == ("ci", {"tag": "new"})
    assert len((await store.list_key_callbacks(["h1"]))["h1"]) == 2
    await store.update_key("h1", callbacks=[entry(host="h2")])
    (only,) = (await store.list_key_callbacks(["h1"]))["h1"]
    assert (only.callback_name, only.plain_vars) == ("langfuse", {"langfuse_host": "h2"})
    await store.update_key("h1", callbacks=[])
    assert await store.list_key_callbacks(["h1"]) == {}


async def test_update_of_a_missing_key_or_with_nothing_to_change(store: Store):
    with pytest.raises(NotFound):
        await store.update_key("missing", key_alias="x")
    assert await store.version() == 0
    await add_key(store, "h1")
    assert (await store.update_key("h1")).token_hash == "h1"
    assert await store.version() == 1, "an update that changes nothing must not wake the watchers"
    with pytest.raises(TypeError, match="unknown fields"):
        await store.update_key("h1", key_prefix="other")
    with pytest.raises(ValueError, match="callback_type"):
        await store.update_key("h1", callbacks=[entry(kind="sometimes")])
    assert await store.version() == 1


async def test_entries_go_with_their_key_and_with_their_keys_team(store: Store):
    await add_key(store, "h1", "team-a", (entry(),))
    await add_key(store, "h2", "team-b", (entry(),))
    await add_key(store, "h3", "team-b", (entry(),))
    await store.create_team("team-b", None, [], {})
    assert await store.delete_keys(["h1"]) == ["h1"]
    assert await store.delete_teams(["team-b"]) == ["team-b"]
    assert await store.list_key_callbacks(["h1", "h2", "h3"]) == {}
    assert (await store.snapshot()).key_callbacks == {}


async def test_list_keys_pages_in_creation_order_and_filters_by_team(store: Store):
    for n in range(5):
        await add_key(store, f"h{n}", "t" if n % 2 else None)
    page, total = await store.list_keys(0, 2)
    assert ([k.token_hash for k in page], total) == (["h0", "h1"], 5)
    page, total = await store.list_keys(4, 2)
    assert ([k.token_hash for k in page], total) == (["h4"], 5)
    page, total = await store.list_keys(0, 10, team_id="t")
    assert ([k.token_hash for k in page], total) == (["h1", "h3"], 2)


async def test_a_v1_database_gains_the_key_callbacks_table_and_keeps_its_data(backend: Backend):
    store = await backend.open()
    await add_key(store, "old-key", "team-a")
    async with store._engines.write.begin() as conn:  # back to the shape v1 left behind
        await conn.execute(text("DROP TABLE key_callbacks"))
        await conn.execute(text("UPDATE schema_version SET version = 1"))
    await store.close()
    upgraded = await backend.open()
    try:
        async with upgraded._engines.base.connect() as conn:
            assert await conn.scalar(text("SELECT version FROM schema_version")) == len(MIGRATIONS)
        assert (await upgraded.get_key("old-key")).team_id == "team-a"
        await upgraded.update_key("old-key", callbacks=[entry()])
        assert list(await upgraded.list_key_callbacks(["old-key"])) == ["old-key"]
    finally:
        await upgraded.close()
