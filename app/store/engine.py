"""Engines from a database URL, set up for the transaction behaviour the store relies on.

* Writers are serialised: on SQLite by ``BEGIN IMMEDIATE`` (taking the write lock up front, so
  two writers never deadlock upgrading a read lock), on PostgreSQL by the store's first statement
  in every write, the ``store_state`` version bump, which row-locks the one state row.
* A snapshot is one consistent read: on SQLite a real ``BEGIN`` (the sqlite3 driver's legacy mode
  would run each SELECT in its own implicit transaction), on PostgreSQL ``REPEATABLE READ``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from sqlalchemy import URL, event, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.util import await_

from app.store.schema import migrate

SQLITE_BUSY_TIMEOUT_MS = 5000
_BEGIN_OPTION = "spangate_sqlite_begin"
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True, slots=True)
class Engines:
    """Three views of one connection pool, differing only in how transactions begin."""

    base: AsyncEngine
    write: AsyncEngine
    read: AsyncEngine
    is_postgres: bool


def async_url(url: str) -> URL:
    """``sqlite:///path`` or a plain path -> aiosqlite; ``postgresql://`` / ``postgres://`` -> asyncpg."""
    if "://" not in url:
        if "/" not in url and "\\" not in url and not PurePath(url).suffix and url != ":memory:":
            # A bare word ("my-bad-url", LiteLLM's example of a broken URL) is a mistake far more often
            # than a SQLite file meant to be created, without an extension, in the working directory.
            raise ValueError("neither a database URL nor a file path: use sqlite:///path/to/file.db, "
                             "a file path such as ./spangate.db, or postgresql://user@host/db")
        url = f"sqlite:///{url}"
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            # Several connections (and gateway instances) must see one database; memory has none.
            raise ValueError("the store needs a SQLite file path, not an in-memory database")
        return parsed.set(drivername="sqlite+aiosqlite")
    raise ValueError(
        f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:///path/to/file.db, "
        "a plain file path, or postgresql://user@host/db"
    )


def display_url(url: str) -> str:
    """The URL for messages: the password masked, so it can be logged and shown."""
    if "://" not in url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: say which store without echoing what might be a secret
        return url.split("://", 1)[0] + "://…"


def check_schema_name(schema: str) -> str:
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(
            f"invalid PostgreSQL schema name {schema!r}: use lowercase letters, digits and _ "
            "(at most 63, not starting with a digit)"
        )
    return schema


# asyncpg waits 60 s for a server that accepts TCP but never answers (a host gone behind a load
# balancer or a full backlog); every admin call would hang that long before its 503.
CONNECT_TIMEOUT_SECONDS = 5.0


def make_engines(url: str, *, schema: str | None = None, connect_timeout: float = CONNECT_TIMEOUT_SECONDS) -> Engines:
    target = async_url(url)
    # hide_parameters: statement values (key hashes, ciphertexts) stay out of error messages and logs.
    if target.get_backend_name() == "sqlite":
        if schema is not None:
            raise ValueError("the schema option is for PostgreSQL; with SQLite use another file")
        engine = create_async_engine(target, hide_parameters=True)
        _install_sqlite_hooks(engine)
        write = engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        return Engines(base=engine, write=write, read=engine, is_postgres=False)
    connect_args: dict[str, Any] = {"timeout": connect_timeout}
    if schema is not None:
        connect_args["server_settings"] = {"search_path": check_schema_name(schema)}
    engine = create_async_engine(target, hide_parameters=True, pool_pre_ping=True, connect_args=connect_args)
    read = engine.execution_options(isolation_level="REPEATABLE READ")
    return Engines(base=engine, write=engine, read=read, is_postgres=True)


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    # The recipe from SQLAlchemy's SQLite docs ("Enabling Non-Legacy SQLite Transactional Modes"),
    # with the BEGIN flavour chosen per engine view through an execution option.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # busy_timeout first: switching a new file to WAL takes an exclusive lock, and instances
        # starting together on an empty database otherwise fail at once with "database is locked".
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _enable_wal(cursor)  # readers never block the writer, nor it them
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN " + conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED"))


def _enable_wal(cursor: Any, attempts: int = 200, pause: float = 0.025) -> None:
    """Switch to WAL, retrying: SQLite answers "database is locked" at once, without its busy
    handler, when several connections (gateway workers) open a new file together. This runs in
    SQLAlchemy's greenlet on the event loop, so it waits with an awaited sleep, not time.sleep."""
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # the aiosqlite adapter re-wraps sqlite3's OperationalError
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            await_(asyncio.sleep(pause))


async def prepare_schema(engines: Engines, url: str, schema: str | None,
                         connect_timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
    """Create the PostgreSQL schema if asked for, then apply pending migrations under a lock."""
    if engines.is_postgres and schema is not None:
        await _create_pg_schema(url, schema, connect_timeout)
    async with engines.write.begin() as conn:
        if engines.is_postgres:
            # Transaction-scoped, so it is released by the commit even if this process dies.
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
                {"name": f"spangate-migrate:{schema or ''}"},
            )
        await conn.run_sync(migrate)


async def _create_pg_schema(url: str, schema: str, connect_timeout: float) -> None:
    # A separate, search_path-free connection: the main engine learns its default schema on its
    # first connect, which must not happen while the schema does not exist yet.
    engine = create_async_engine(async_url(url), hide_parameters=True, poolclass=NullPool,
                                 connect_args={"timeout": connect_timeout})
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": "spangate-create-schema"}
            )
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    finally:
        await engine.dispose()
