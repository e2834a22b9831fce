"""What every part of the store shares: the error boundary and the write and read transactions.

Every write runs in one transaction that first bumps ``store_state.version``; a write that turns
out to change nothing rolls back, so the version moves exactly when the data does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.engine import Engines
from app.store.records import CallbackWrite, StoreError, StoreUnavailable
from app.store.rows import callback_type_of
from app.store.schema import callbacks, key_callbacks, state

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Write:
    """The connection of one write; set ``changed = False`` to roll back a write that did nothing."""

    __slots__ = ("changed", "conn")

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.changed = True


@asynccontextmanager
async def mapped_errors(operation: str) -> AsyncIterator[None]:
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


class StoreBase:
    """The connection handling the store's parts share; ``store.Store`` joins the parts."""

    def __init__(self, engines: Engines, clock: Clock) -> None:
        self._engines = engines
        self._now = clock

    @property
    def is_postgres(self) -> bool:
        return self._engines.is_postgres

    @asynccontextmanager
    async def _writing(self, operation: str) -> AsyncIterator[_Write]:
        async with mapped_errors(operation), self._engines.write.connect() as conn:
            await conn.execute(update(state).where(state.c.id == 1).values(version=state.c.version + 1))
            write = _Write(conn)
            yield write
            await (conn.commit() if write.changed else conn.rollback())

    @asynccontextmanager
    async def _reading(self, operation: str) -> AsyncIterator[AsyncConnection]:
        async with mapped_errors(operation), self._engines.read.connect() as conn:
            yield conn

    async def _insert_entries(self, conn: AsyncConnection, entries: Sequence[CallbackWrite], **owner: str) -> None:
        """A team's (``team_id=``) or a key's (``token_hash=``) logging entries, in the caller's write."""
        if not entries:
            return
        now = self._now()
        table = callbacks if "team_id" in owner else key_callbacks
        rows = [{**owner, "callback_name": e.callback_name,
                 "callback_type": callback_type_of(e.callback_type).value, "vars_ciphertext": e.vars_ciphertext,
                 "secret_var_names": sorted(e.secret_var_names), "plain_vars": dict(e.plain_vars),
                 "updated_at": now} for e in entries]
        await conn.execute(table.insert(), rows)
