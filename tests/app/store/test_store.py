from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest
from sqlalchemy import text

from app.store import (
    AlreadyExists,
    CallbackRecord,
    CallbackType,
    KeyRecord,
    NotFound,
    Store,
    StoreError,
    StoreUnavailable,
    TeamRecord,
)
from app.store.schema import MIGRATIONS
from tests.app.store.conftest import PG_URL, Backend, FakeClock

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def add_key(store: Store, token_hash: str, team_id: str | None, **overrides) -> KeyRecord:
    fields = {"key_alias": None, "models": [], "metadata": {}, "expires_at": None} | overrides
    return await store.create_key(token_hash, "sk-abcd…", team_id, **fields)


async def add_callback(store: Store, team_id: str, name: str = "langfuse", kind: str = "success") -> bool:
    return await store.set_callback(
        team_id, name, kind, f"v1.{team_id}.{kind}", ["langfuse_secret_key"], {"langfuse_host": "h"}
    )


# -- teams ---------------------------------------------------------------------------------------


async def test_create_team_then_get_returns_the_same_record(store: Store):
    created = await store.create_team("team-a", "Team A", ["gpt-4"], {"owner": "ops"})
    assert created == TeamRecord(
        team_id="team-a",
        team_alias="Team A",
        models=("gpt-4",),
        metadata={"owner": "ops"},
        logging_disabled=False,
        created_at=at(1),
        updated_at=at(1),
    )
    assert await store.get_team("team-a") == created
    assert await store.get_team("nobody") is None


async def test_create_team_without_id_gets_a_uuid4(store: Store):
    team = await store.create_team(None, None, [], {})
    assert uuid.UUID(team.team_id).version == 4
    assert await store.get_team(team.team_id) == team


async def test_create_team_twice_raises_already_exists_and_keeps_the_first(store: Store):
    await store.create_team("team-a", "first", [], {})
    version = await store.version()
    with pytest.raises(AlreadyExists, match="team-a"):
        await store.create_team("team-a", "second", [], {})
    assert (await store.get_team("team-a")).team_alias == "first"
    assert await store.version() == version


async def test_empty_team_id_is_refused(store: Store):
    with pytest.raises(ValueError, match="empty"):
        await store.create_team("", None, [], {})


async def test_metadata_that_is_not_json_is_a_value_error_without_a_write(store: Store):
    with pytest.raises(ValueError, match="cannot be stored"):
        await store.create_team("a", None, [], {"tags": {"x", "y"}})
    assert await store.get_team("a") is None
    assert await store.version() == 0


async def test_list_teams_in_creation_order(store: Store):
    for team_id in ("c", "a", "b"):
        await store.create_team(team_id, None, [], {})
    assert [team.team_id for team in await store.list_teams()] == ["c", "a", "b"]


async def test_update_team_changes_only_the_given_fields(store: Store):
    await store.create_team("team-a", "A", ["gpt-4"], {"k": 1})
    updated = await store.update_team("team-a", models=["gpt-4o", "o3"], metadata={"k": 2})
    assert updated == TeamRecord("team-a", "A", ("gpt-4o", "o3"), {"k": 2}, False, at(1), at(2))
    assert await store.get_team("team-a") == updated


async def test_update_team_refuses_unknown_fields_and_missing_teams(store: Store):
    await store.create_team("team-a", None, [], {})
    with pytest.raises(TypeError, match="created_at"):
        await store.update_team("team-a", created_at=T0)
    with pytest.raises(NotFound, match="ghost"):
        await store.update_team("ghost", team_alias="x")


async def test_logging_disabled_round_trip(store: Store):
    await store.create_team("team-a", None, [], {})
    assert (await store.set_logging_disabled("team-a", True)).logging_disabled is True
    assert (await store.get_team("team-a")).logging_disabled is True
    assert (await store.set_logging_disabled("team-a", False)).logging_disabled is False
    with pytest.raises(NotFound):
        await store.set_logging_disabled("ghost", True)


async def test_delete_teams_also_deletes_their_callbacks_and_keys_only(store: Store):
    for team_id in ("a", "b"):
        await store.create_team(team_id, None, [], {})
        await add_callback(store, team_id, kind="success")
        await add_callback(store, team_id, kind="failure")
        await add_key(store, f"hash-{team_id}", team_id)
    await add_key(store, "hash-none", None)
    await add_key(store, "hash-config-team", "from-config")

    assert await store.delete_teams(["ghost", "a", "a"]) == ["a"]

    assert await store.get_team("a") is None
    assert await store.list_callbacks("a") == []
    assert await store.get_key("hash-a") is None
    assert await store.get_team("b") is not None
    assert len(await store.list_callbacks("b")) == 2
    for kept in ("hash-b", "hash-none", "hash-config-team"):
        assert await store.get_key(kept) is not None


# -- keys ----------------------------------------------------------------------------------------


async def test_key_round_trip_including_a_config_only_team(store: Store):
    expires = datetime(2030, 5, 1, 12, 30, tzinfo=UTC)
    created = await store.create_key("h1", "sk-KbUu…", "from-config", "ci", ["gpt-4"], {"purpose": "ci"}, expires)
    assert created == KeyRecord("h1", "sk-KbUu…", "ci", "from-config", ("gpt-4",), {"purpose": "ci"}, expires, at(1))
    assert await store.get_key("h1") == created
    assert await store.get_key("h2") is None


async def test_expiry_comes_back_as_aware_utc_whatever_zone_went_in(store: Store):
    plus_two = datetime(2030, 1, 1, 16, 0, tzinfo=timezone(timedelta(hours=2)))
    key = await add_key(store, "h1", None, expires_at=plus_two)
    stored = await store.get_key("h1")
    assert stored.expires_at == datetime(2030, 1, 1, 14, 0, tzinfo=UTC)
    assert stored.expires_at.tzinfo is UTC
    assert key.is_expired(datetime(2030, 1, 1, 14, 0, tzinfo=UTC))
    assert not key.is_expired(datetime(2030, 1, 1, 13, 59, tzinfo=UTC))


async def test_naive_expiry_is_refused(store: Store):
    with pytest.raises(ValueError, match="aware"):
        await add_key(store, "h1", None, expires_at=datetime(2030, 1, 1))


async def test_duplicate_key_hash_raises_already_exists(store: Store):
    await add_key(store, "h1", None)
    with pytest.raises(AlreadyExists):
        await add_key(store, "h1", "team-a")


async def test_delete_keys_returns_only_those_that_existed(store: Store):
    await add_key(store, "h1", None)
    await add_key(store, "h2", None)
    assert await store.delete_keys(["h2", "missing", "h1"]) == ["h2", "h1"]
    assert await store.get_key("h1") is None and await store.get_key("h2") is None
    assert await store.delete_keys(["h1"]) == []


# -- callbacks -----------------------------------------------------------------------------------


async def test_same_name_and_type_replaces_other_type_adds(store: Store, clock: FakeClock):
    assert await store.set_callback("a", "langfuse", "success", "v1.old", ["langfuse_secret_key"], {}) is False
    assert (
        await store.set_callback(
            "a", "langfuse", "success", "v1.new", ["langfuse_secret_key", "langfuse_public_key"], {"langfuse_host": "h"}
        )
        is True
    )
    assert await store.set_callback("a", "langfuse", "failure", None, [], {"x": 1}) is False

    assert await store.list_callbacks("a") == [
        CallbackRecord("a", "langfuse", CallbackType.FAILURE, None, (), {"x": 1}, at(3)),
        CallbackRecord(
            "a",
            "langfuse",
            CallbackType.SUCCESS,
            "v1.new",
            ("langfuse_public_key", "langfuse_secret_key"),
            {"langfuse_host": "h"},
            at(2),
        ),
    ]
    assert await store.list_callbacks("b") == []


async def test_unknown_callback_type_is_refused_without_a_write(store: Store):
    with pytest.raises(ValueError, match="success_and_failure"):
        await store.set_callback("a", "langfuse", "sometimes", None, [], {})
    assert await store.version() == 0


async def test_delete_callback_removes_every_type_of_that_name(store: Store):
    for kind in ("success", "failure", "success_and_failure"):
        await add_callback(store, "a", kind=kind)
    await add_callback(store, "a", name="datadog")
    await add_callback(store, "b")
    assert await store.delete_callback("a", "langfuse") == 3
    assert [(c.team_id, c.callback_name) for c in await store.list_callbacks("a")] == [("a", "datadog")]
    assert len(await store.list_callbacks("b")) == 1
    assert await store.delete_callback("a", "langfuse") == 0


# -- version and snapshot ------------------------------------------------------------------------


async def test_every_change_bumps_the_version_by_one_and_no_ops_do_not(store: Store):
    changes = [
        lambda: store.create_team("a", None, [], {}),
        lambda: store.update_team("a", team_alias="A"),
        lambda: store.set_logging_disabled("a", True),
        lambda: add_callback(store, "a"),
        lambda: add_callback(store, "a"),  # a replacement is a change too
        lambda: store.delete_callback("a", "langfuse"),
        lambda: add_key(store, "h1", "a"),
        lambda: store.delete_keys(["h1"]),
        lambda: store.delete_teams(["a"]),
    ]
    no_ops = [
        lambda: store.delete_teams(["ghost"]),
        lambda: store.delete_keys(["ghost"]),
        lambda: store.delete_callback("ghost", "langfuse"),
    ]
    assert await store.version() == 0
    for expected, change in enumerate(changes, start=1):
        await change()
        assert await store.version() == expected
    for no_op in no_ops:
        await no_op()
        assert await store.version() == len(changes)


async def test_snapshot_holds_everything_read_only(store: Store):
    await store.create_team("a", "A", [], {})
    await store.create_team("b", "B", [], {})
    await add_callback(store, "a", kind="success")
    await add_callback(store, "a", name="datadog")
    await add_key(store, "h1", "a")
    await add_key(store, "h2", None)

    snap = await store.snapshot()
    assert snap.version == await store.version() == 6
    assert dict(snap.teams) == {team.team_id: team for team in await store.list_teams()}
    assert dict(snap.keys) == {"h1": await store.get_key("h1"), "h2": await store.get_key("h2")}
    assert dict(snap.callbacks) == {"a": tuple(await store.list_callbacks("a"))}
    with pytest.raises(TypeError):
        snap.keys["h3"] = snap.keys["h1"]  # type: ignore[index]


async def test_snapshot_is_consistent_while_another_instance_writes(store: Store, second_store: Store):
    """Each delete_teams removes a team, its callback and its key, and bumps the version, in one
    transaction; every snapshot taken meanwhile must show whole steps only."""
    teams = 40
    for n in range(teams):
        await store.create_team(f"t{n}", None, [], {})
        await add_callback(store, f"t{n}")
        await add_key(store, f"h{n}", f"t{n}")
    base = await store.version()

    async def delete_one_by_one() -> None:
        for n in range(teams):
            await second_store.delete_teams([f"t{n}"])

    writer = asyncio.create_task(delete_one_by_one())
    seen = set()
    try:
        while not writer.done():
            snap = await store.snapshot()
            deleted = snap.version - base
            seen.add(deleted)
            assert set(snap.teams) == {f"t{n}" for n in range(deleted, teams)}
            assert set(snap.callbacks) == set(snap.teams)
            assert {key.team_id for key in snap.keys.values()} == set(snap.teams)
    finally:
        if not writer.done():
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
    await writer
    assert len(seen) > 1, "the writer finished before any snapshot overlapped it"


# -- opening, migrating, concurrency -------------------------------------------------------------


async def test_opening_twice_migrates_once_and_keeps_the_data(backend: Backend):
    first = await backend.open()
    await first.create_team("a", None, [], {})
    await first.close()
    second = await backend.open()
    try:
        assert (await second.get_team("a")) is not None
        assert await second.version() == 1
        async with second._engines.base.connect() as conn:
            assert await conn.scalar(text("SELECT version FROM schema_version")) == len(MIGRATIONS)
            assert await conn.scalar(text("SELECT count(*) FROM schema_version")) == 1
            assert await conn.scalar(text("SELECT count(*) FROM store_state")) == 1
    finally:
        await second.close()


async def test_instances_starting_together_on_an_empty_database_all_open(backend: Backend):
    stores = await asyncio.gather(*(backend.open() for _ in range(4)))
    try:
        await stores[0].create_team("a", None, [], {})
        assert all([await s.get_team("a") is not None for s in stores])
    finally:
        for opened in stores:
            await opened.close()


async def test_a_schema_newer_than_the_code_is_refused(backend: Backend):
    store = await backend.open()
    async with store._engines.write.begin() as conn:
        await conn.execute(text("UPDATE schema_version SET version = 99"))
    await store.close()
    with pytest.raises(StoreError, match="version 99, newer"):
        await backend.open()


async def test_two_instances_creating_the_same_team_one_wins(store: Store, second_store: Store):
    results = await asyncio.gather(
        *(s.create_team("same", alias, [], {}) for s, alias in ((store, "one"), (second_store, "two"))),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["AlreadyExists", "TeamRecord"]
    assert await store.version() == 1


@pytest.mark.postgres
async def test_unreachable_postgres_is_store_unavailable_without_the_password():
    with pytest.raises(StoreUnavailable) as info:
        await Store.open("postgresql://postgres:hunter2@127.0.0.1:1/test")
    assert "hunter2" not in str(info.value)


async def test_unopenable_sqlite_file_is_store_unavailable(tmp_path):
    with pytest.raises(StoreUnavailable, match="open"):
        await Store.open(str(tmp_path / "no-such-dir" / "store.db"))
    # aiosqlite stops the worker of a failed connect without awaiting it; if this test's loop closes
    # first, that thread fails in a later test. Let it finish here.
    deadline = time.monotonic() + 2
    while any(t.name.endswith("(_connection_worker_thread)") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "aiosqlite worker thread did not stop"
        await asyncio.sleep(0.01)


@pytest.mark.postgres
async def test_schemas_keep_test_runs_apart():
    names = [f"spangate_test_{secrets.token_hex(6)}" for _ in range(2)]
    first = await Store.open(PG_URL, schema=names[0])
    try:
        await first.create_team("a", None, [], {})
        second = await Store.open(PG_URL, schema=names[1])
        try:
            assert await second.list_teams() == []
            assert await second.version() == 0
        finally:
            await second.close()
        assert [team.team_id for team in await first.list_teams()] == ["a"]
    finally:
        await first.close()
        conn = await asyncpg.connect(PG_URL)
        for name in names:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await conn.close()


async def test_a_postgres_that_accepts_but_never_answers_is_store_unavailable_after_the_connect_timeout():
    # A listening socket nobody accepts from: TCP connects (the kernel's backlog), no server ever speaks.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="store open failed: TimeoutError"):
            await Store.open(f"postgresql://postgres@127.0.0.1:{port}/test", connect_timeout=0.2)
        assert time.monotonic() - started < 2  # asyncpg's own default would have waited 60 s
