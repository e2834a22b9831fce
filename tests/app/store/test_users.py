"""Users and team members in the store (SQLite and PostgreSQL): member_add's all-or-none write that
creates unknown users, removal, the admin pairs every snapshot carries, a key's user, and the v4
step that brings them to a database made before they existed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.store import AlreadyExists, MemberRecord, MemberRole, MemberWrite, Store, UserRecord
from app.store.schema import MIGRATIONS
from tests.app.store.conftest import Backend

T0 = datetime(2025, 1, 1, tzinfo=UTC)
ADMIN, USER = MemberRole.ADMIN, MemberRole.USER


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def test_member_add_creates_unknown_users_and_finds_known_ones_by_id_or_email(store: Store):
    known = await store.create_user("u-known", "known@example.com", "internal_user")
    users, members = await store.add_members("t", [MemberWrite("u-new", None, ADMIN),
                                                   MemberWrite(None, "known@example.com", USER)])
    assert users == [UserRecord("u-new", None, "internal_user", at(2)), known]
    assert members == [MemberRecord("t", "u-new", ADMIN, at(3)), MemberRecord("t", "u-known", USER, at(4))]
    assert await store.get_user("u-new") == users[0]
    assert await store.list_members("t") == [(members[0], None), (members[1], "known@example.com")]
    assert await store.user_teams("u-known") == [members[1]]


async def test_member_add_is_all_or_none(store: Store):
    await store.add_members("t", [MemberWrite("u1", None, USER)])
    version = await store.version()
    with pytest.raises(AlreadyExists, match="u1"):
        await store.add_members("t", [MemberWrite("u2", None, ADMIN), MemberWrite("u1", None, ADMIN)])
    assert await store.version() == version
    assert await store.get_user("u2") is None  # the user created for the refused request is not kept
    assert [m.user_id for m, _ in await store.list_members("t")] == ["u1"]


async def test_the_snapshot_holds_admin_pairs_and_removal_takes_them_away(store: Store):
    await store.add_members("t", [MemberWrite("boss", None, ADMIN), MemberWrite("dev", None, USER)])
    await store.add_members("other", [MemberWrite("dev", None, ADMIN)])
    assert (await store.snapshot()).team_admins == {("t", "boss"), ("other", "dev")}
    assert await store.remove_member("t", "boss") is True
    assert await store.remove_member("t", "boss") is False
    assert (await store.snapshot()).team_admins == {("other", "dev")}


async def test_a_key_carries_its_user_who_is_created_with_it(store: Store):
    key = await store.create_key("h1", "sk-abcd…", "t", None, [], {}, None, user_id="u-key")
    assert key.user_id == "u-key"
    assert (await store.snapshot()).keys["h1"].user_id == "u-key"
    assert (await store.get_user("u-key")).user_role == "internal_user"
    assert [k.token_hash for k in await store.user_keys("u-key")] == ["h1"]
    assert (await store.create_key("h2", "sk-efgh…", "t", None, [], {}, None)).user_id is None


async def test_deleting_a_team_deletes_its_memberships_but_not_its_users(store: Store):
    await store.create_team("t", None, [], {})
    await store.add_members("t", [MemberWrite("boss", None, ADMIN)])
    await store.delete_teams(["t"])
    assert await store.list_members("t") == []
    assert await store.get_user("boss") is not None
    assert (await store.snapshot()).team_admins == frozenset()


async def test_create_user_refuses_a_taken_id(store: Store):
    await store.create_user("u1", None)
    with pytest.raises(AlreadyExists):
        await store.create_user("u1", "again@example.com")


async def test_a_v3_database_gains_users_members_and_the_keys_user_column(backend: Backend):
    store = await backend.open()
    await store.create_key("old", "sk-abcd…", "team-a", None, [], {}, None)
    async with store._engines.write.begin() as conn:  # back to the shape v3 left behind
        await conn.execute(text("DROP TABLE team_members"))
        await conn.execute(text("DROP TABLE users"))
        await conn.execute(text("ALTER TABLE keys DROP COLUMN user_id"))
        await conn.execute(text("UPDATE schema_version SET version = 3"))
    await store.close()
    upgraded = await backend.open()
    try:
        async with upgraded._engines.base.connect() as conn:
            assert await conn.scalar(text("SELECT version FROM schema_version")) == len(MIGRATIONS)
        old = await upgraded.get_key("old")
        assert (old.team_id, old.user_id) == ("team-a", None)
        await upgraded.add_members("team-a", [MemberWrite("boss", None, ADMIN)])
        await upgraded.create_key("new", "sk-efgh…", "team-a", None, [], {}, None, user_id="boss")
        assert (await upgraded.snapshot()).keys["new"].user_id == "boss"
    finally:
        await upgraded.close()
