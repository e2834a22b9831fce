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
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
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

    def _insert(self, table: Any) -> Any:
        dialect = postgresql if self._engines.is_postgres else sqlite
        return dialect.insert(table)

    async def record_spend(self, rows: Sequence[SpendRow]) -> int:
        """Record the rows not recorded yet and add them to their counters; how many were new."""
        if not rows:
            return 0
        first: dict[str, SpendRow] = {}
        for row in rows:
            first.setdefault(row.request_id, row)  # the first of one id wins, within a batch as across
        unique = list(first.values())
        async with self._spending("record_spend") as conn:
            statement = self._insert(spend_logs).on_conflict_do_nothing(index_elements=["request_id"])
            new_ids = set(await conn.scalars(statement.returning(spend_logs.c.request_id),
                                             [_values(row) for row in unique]))
            totals: dict[Counter, list[int]] = {}
            for row in unique:
                if row.request_id in new_ids:
                    for counter in row.counters():
                        total = totals.setdefault(counter, [0, 0])
                        total[0] += row.spend_nanos
                        total[1] += row.total_tokens
            if totals:
                await self._add(conn, totals)
        return len(new_ids)

    async def _add(self, conn: AsyncConnection, totals: dict[Counter, list[int]]) -> None:
        # In one order on every instance, so two writers never lock two counters the other way round.
        values = [{"counter": c, "period": p, "spend_nanos": s, "tokens": t}
                  for (c, p), (s, t) in sorted(totals.items())]
        statement = self._insert(spend_counters)
        statement = statement.on_conflict_do_update(
            index_elements=["counter", "period"],
            set_={"spend_nanos": spend_counters.c.spend_nanos + statement.excluded.spend_nanos,
                  "tokens": spend_counters.c.tokens + statement.excluded.tokens})
        for value in values:  # one statement each: an upsert with executemany is not portable here
            await conn.execute(statement, value)

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


def _values(row: SpendRow) -> dict[str, Any]:
    return {f.name: getattr(row, f.name) for f in fields(SpendRow)}


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
