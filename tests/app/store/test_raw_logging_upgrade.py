"""The v3 step: ``metadata.logging`` an older version stored raw (its secrets in clear, never applied)
is removed from teams and keys on upgrade, the rest of their metadata kept (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select, text, update

from app.store.schema import MIGRATIONS, keys, teams
from tests.app.store.conftest import Backend

RAW = {"logging": [{"callback_name": "langfuse", "callback_type": "success",
                    "callback_vars": {"langfuse_secret_key": "sk-lf-stored-in-clear"}}], "owner": "ops"}


async def test_raw_logging_entries_are_scrubbed_on_upgrade(backend: Backend, caplog: pytest.LogCaptureFixture):
    store = await backend.open()
    await store.create_team("team-raw", None, [], {"owner": "ops"})
    await store.create_team("team-plain", None, [], {"owner": "dev"})
    await store.create_key("key-raw", "sk-abcd…", "team-raw", None, [], {"owner": "ops"}, None)
    async with store._engines.write.begin() as conn:  # what a v2 gateway left behind
        await conn.execute(update(teams).where(teams.c.team_id == "team-raw").values(metadata=RAW))
        await conn.execute(update(keys).where(keys.c.token_hash == "key-raw").values(metadata=RAW))
        await conn.execute(text("UPDATE schema_version SET version = 2"))
    await store.close()
    with caplog.at_level(logging.WARNING, "spangate.store"):
        upgraded = await backend.open()
    try:
        async with upgraded._engines.base.connect() as conn:
            assert await conn.scalar(text("SELECT version FROM schema_version")) == len(MIGRATIONS)
            team_meta = dict((await conn.execute(select(teams.c.team_id, teams.c.metadata))).all())
            key_meta = (await conn.execute(select(keys.c.metadata))).scalar_one()
        assert team_meta == {"team-raw": {"owner": "ops"}, "team-plain": {"owner": "dev"}}
        assert key_meta == {"owner": "ops"}
        assert "removed 1 never-applied metadata.logging entries" in caplog.text
        assert "sk-lf-stored-in-clear" not in caplog.text
    finally:
        await upgraded.close()
