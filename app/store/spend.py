"""The spend log and the spend counters: each call's cost recorded once, and added up per key and team.

``record_spend`` is the one writer of spend. It inserts the rows whose ``request_id`` is new and adds
exactly those rows to their counters, in one transaction: a batch sent twice (a journal replayed after
a crash, a retry after a timeout that in fact committed) adds nothing the second time.

Spend writes do not bump ``store_state.version``: they change no key, team or callback, and a bump
per batch would make every watcher reload its snapshot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.base import StoreBase, mapped_errors
from app.store.records import SpendRow
from app.store.schema import spend_counters, spend_logs

SPEND_COLUMNS = tuple(spend_logs.c[f.name] for f in fields(SpendRow))
Counter = tuple[str, int]  # (``key:<hash>`` or ``team:<id>``, budget period start)


class SpendStore(StoreBase):
    @asynccontextmanager
    async def _spending(self, operation: str) -> AsyncIterator[AsyncConnection]:
        async with mapped_errors(operation), self._engines.write.connect() as conn:
            yield conn
            await conn.commit()

    async def record_spend(self, rows: Sequence[SpendRow]) -> int:
        """Record the rows not recorded yet and add them to their counters; how many were new.

        Written with the driver's own batch statements (one statement per batch on PostgreSQL, one
        executemany on SQLite): through SQLAlchemy's per-row parameter handling a row cost ~50 us of
        the gateway's CPU, more than the rest of its call's bookkeeping together."""
        if not rows:
            return 0
        first: dict[str, SpendRow] = {}
        for row in rows:
            first.setdefault(row.request_id, row)  # the first of one id wins, within a batch as across
        async with self._spending("record_spend") as conn:
            if self._engines.is_postgres:
                new_ids = await _insert_postgres(conn, list(first.values()))
            else:
                new_ids = await _insert_sqlite(conn, first)
            totals: dict[Counter, list[int]] = {}
            for request_id in new_ids:
                row = first[request_id]
                for counter in row.counters():
                    total = totals.setdefault(counter, [0, 0])
                    total[0] += row.spend_nanos
                    total[1] += row.total_tokens
            if totals:
                await self._add(conn, totals)
        return len(new_ids)

    async def _add(self, conn: AsyncConnection, totals: dict[Counter, list[int]]) -> None:
        # In one order on every instance, so two writers never lock two counters the other way round.
        ordered = sorted(totals.items())
        if self._engines.is_postgres:
            await conn.execute(text(
                "INSERT INTO spend_counters (counter, period, spend_nanos, tokens) "
                "SELECT * FROM unnest(CAST(:c AS text[]), CAST(:p AS bigint[]), CAST(:s AS bigint[]), "
                "CAST(:t AS bigint[])) ON CONFLICT (counter, period) DO UPDATE SET "
                "spend_nanos = spend_counters.spend_nanos + excluded.spend_nanos, "
                "tokens = spend_counters.tokens + excluded.tokens"),
                {"c": [c for (c, _), _ in ordered], "p": [p for (_, p), _ in ordered],
                 "s": [v[0] for _, v in ordered], "t": [v[1] for _, v in ordered]})
            return
        await conn.exec_driver_sql(
            "INSERT INTO spend_counters (counter, period, spend_nanos, tokens) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (counter, period) DO UPDATE SET spend_nanos = spend_nanos + excluded.spend_nanos, "
            "tokens = tokens + excluded.tokens", [(c, p, v[0], v[1]) for (c, p), v in ordered])

    async def period_spend(self, counters: Iterable[Counter]) -> dict[Counter, int]:
        """The spend (nanos) of each counter in the period named; counters with none are left out."""
        wanted = sorted(set(counters))
        if not wanted:
            return {}
        out: dict[Counter, int] = {}
        async with self._reading("period_spend") as conn:
            for chunk in (wanted[i:i + 500] for i in range(0, len(wanted), 500)):
                rows = await conn.execute(
                    select(spend_counters.c.counter, spend_counters.c.period, spend_counters.c.spend_nanos)
                    .where(tuple_(spend_counters.c.counter, spend_counters.c.period).in_(chunk)))
                out.update({(c, p): int(s) for c, p, s in rows})
        return out

    async def spend_logs(self, *, token_hash: str | None = None, team_id: str | None = None,
                         user_id: str | None = None, request_id: str | None = None,
                         start: datetime | None = None, end: datetime | None = None,
                         offset: int = 0, limit: int = 1000) -> list[SpendRow]:
        """Spend log rows, oldest first; ``start`` inclusive, ``end`` exclusive, on the call's start."""
        where = _filters(token_hash, team_id, user_id, request_id, start, end)
        async with self._reading("spend_logs") as conn:
            rows = await conn.execute(select(*SPEND_COLUMNS).where(*where)
                                      .order_by(spend_logs.c.start_time, spend_logs.c.request_id)
                                      .offset(offset).limit(limit))
            return [SpendRow(*row) for row in rows]

    async def spend_total(self, *, token_hash: str | None = None, team_id: str | None = None,
                          start: datetime | None = None, end: datetime | None = None) -> tuple[int, int]:
        """(rows, spend nanos) of the spend log rows matching, summed by the database."""
        where = _filters(token_hash, team_id, None, None, start, end)
        async with self._reading("spend_total") as conn:
            row = (await conn.execute(select(func.count(), func.coalesce(func.sum(spend_logs.c.spend_nanos), 0))
                                      .where(*where))).one()
        return int(row[0]), int(row[1])


NAMES = tuple(f.name for f in fields(SpendRow))
_TIMES = {NAMES.index("start_time"), NAMES.index("end_time")}
_PG_TYPES = {"prompt_tokens": "bigint", "completion_tokens": "bigint", "total_tokens": "bigint",
             "spend_nanos": "bigint", "key_period": "bigint", "team_period": "bigint",
             "start_time": "timestamp", "end_time": "timestamp"}
_PG_INSERT = text(
    f"INSERT INTO spend_logs ({', '.join(NAMES)}) SELECT * FROM unnest("
    + ", ".join(f"CAST(:{n} AS {_PG_TYPES.get(n, 'text')}[])" for n in NAMES)
    + ") ON CONFLICT (request_id) DO NOTHING RETURNING request_id")
_SQLITE_INSERT = f"INSERT INTO spend_logs ({', '.join(NAMES)}) VALUES ({', '.join('?' * len(NAMES))})"
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's SQLite DATETIME storage: what the readers parse


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


async def _insert_postgres(conn: AsyncConnection, rows: list[SpendRow]) -> list[str]:
    columns: dict[str, list[Any]] = {name: [] for name in NAMES}
    for row in rows:
        for name in NAMES:
            columns[name].append(getattr(row, name))
    for name in ("start_time", "end_time"):
        columns[name] = [_naive(moment) for moment in columns[name]]
    return list(await conn.scalars(_PG_INSERT, columns))


async def _insert_sqlite(conn: AsyncConnection, rows: dict[str, SpendRow]) -> list[str]:
    """Under the write lock (BEGIN IMMEDIATE): the ids found are the ids recorded, with no race."""
    ids = list(rows)
    known: set[str] = set()
    for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
        found = await conn.exec_driver_sql(
            f"SELECT request_id FROM spend_logs WHERE request_id IN ({', '.join('?' * len(chunk))})", tuple(chunk))
        known.update(r for (r,) in found)
    new = [request_id for request_id in ids if request_id not in known]
    if new:
        await conn.exec_driver_sql(_SQLITE_INSERT, [_sqlite_values(rows[request_id]) for request_id in new])
    return new


def _sqlite_values(row: SpendRow) -> tuple[Any, ...]:
    values = [getattr(row, name) for name in NAMES]
    for index in _TIMES:
        values[index] = _naive(values[index]).strftime(_SQLITE_TIME)
    return tuple(values)


def _filters(token_hash: str | None, team_id: str | None, user_id: str | None, request_id: str | None,
             start: datetime | None, end: datetime | None) -> list[Any]:
    where: list[Any] = []
    for column, value in ((spend_logs.c.token_hash, token_hash), (spend_logs.c.team_id, team_id),
                          (spend_logs.c.user_id, user_id), (spend_logs.c.request_id, request_id)):
        if value is not None:
            where.append(column == value)
    if start is not None:
        where.append(spend_logs.c.start_time >= start)
    if end is not None:
        where.append(spend_logs.c.start_time < end)
    return where
