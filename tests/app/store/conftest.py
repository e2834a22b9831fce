"""Every store test runs on SQLite (a file in tmp_path) and on the real PostgreSQL, each
PostgreSQL test in its own random schema that is dropped afterwards."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from app.store import Store

PG_URL = os.environ.get("SPANGATE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


class FakeClock:
    """Deterministic time: each reading is one second after the previous one."""

    def __init__(self, start: datetime = datetime(2025, 1, 1, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@dataclass(frozen=True)
class Backend:
    name: str
    url: str
    schema: str | None

    async def open(self, **kwargs: Any) -> Store:
        return await Store.open(self.url, schema=self.schema, **kwargs)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", str(tmp_path / "store.db"), None)
        return
    schema = f"spangate_test_{secrets.token_hex(6)}"
    try:
        yield Backend("postgres", PG_URL, schema)
    finally:
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(backend: Backend, clock: FakeClock) -> AsyncIterator[Store]:
    opened = await backend.open(clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def second_store(backend: Backend) -> AsyncIterator[Store]:
    """Another instance on the same database, as a second gateway process would have."""
    opened = await backend.open()
    try:
        yield opened
    finally:
        await opened.close()
