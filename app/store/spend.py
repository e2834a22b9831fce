"""The spend log and the spend counters: each call's cost recorded once, and added up per key and team.

``record_spend`` is the one writer of spend. It inserts the rows whose ``request_id`` is new and adds
exactly those rows to their counters, in one transaction: a batch sent twice (a journal replayed after
a crash, a retry after a timeout that in fact committed) adds nothing the second time.

Spend writes do not bump ``store_state.version``: they change no key, team or callback, and a bump
per batch would make every watcher reload its snapshot.

``admitting`` and ``settle_windows`` are the SQL of the PostgreSQL limits backend (``app.limits``
decides; the store only counts): an admission is one transaction that holds an advisory lock per
counter, reads the budget counters, the rpm/tpm windows and the parallel leases on the database's clock,
and counts the call if the backend admits it. The lock is taken in its own statement, before the reads:
in READ COMMITTED a statement's snapshot is taken when it starts, so a read in the locking statement
could miss what the previous holder committed while it waited.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from sqlalchemy import func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.store.base import StoreBase, mapped_errors
from app.store.records import SpendRow, StoreError
from app.store.schema import spend_counters, spend_logs

SPEND_COLUMNS = tuple(spend_logs.c[f.name] for f in fields(SpendRow))
Counter = tuple[str, int]  # (``key:<hash>`` or ``team:<id>``, budget period start)
SWEEP_ROWS = 1000  # window rows past the window deleted per admission: bounded work, and enough to keep up
_CALL, _TOKENS = 0, 1  # limit_events.kind


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

    @cached_property
    def _single_statements(self) -> AsyncEngine:
        """For work that is one statement (atomic by itself): no BEGIN and COMMIT, two round trips fewer."""
        return self._engines.write.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def admitting(self, counters: Iterable[str], *, lock: bool = True) -> AsyncIterator[LimitAdmission]:
        """One admission's transaction, holding the counters' advisory locks until it commits (PostgreSQL).
        ``lock=False`` for an admission that will count nothing (its limits only read): a single read."""
        if not self._engines.is_postgres:
            raise StoreError("shared limit counters need PostgreSQL")
        if not lock:
            async with mapped_errors("admit"), self._single_statements.connect() as conn:
                yield LimitAdmission(conn)
            return
        async with mapped_errors("admit"), self._engines.write.connect() as conn:
            await conn.execute(_LOCK, {"keys": lock_keys(counters)})
            yield LimitAdmission(conn)
            await conn.commit()

    async def settle_windows(self, request_id: str, tpm: Sequence[str], tokens: int,
                             parallel: Sequence[str]) -> None:
        """A settled call's tokens into the tpm windows of ``tpm`` (once per request id) and its parallel
        slots in ``parallel`` freed (a call that is released, not settled: ``tpm`` empty)."""
        async with mapped_errors("settle_windows"), self._single_statements.connect() as conn:
            await conn.execute(_SETTLE, {"request_id": request_id, "tpm": list(tpm) if tokens > 0 else [],
                                         "tokens": tokens, "parallel": list(parallel)})

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


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """One counter as an admission holding its lock reads it; times are unix seconds (database clock)."""

    spend_nanos: int  # in the budget period asked for
    calls: int  # admitted in the window
    first_call: float | None  # the oldest of those
    tokens: int  # settled in the window
    first_tokens: float | None
    leases: int  # parallel slots held (unexpired)


class LimitAdmission:
    """What ``SpendStore.admitting`` yields: read the counters, then count the call if it is admitted."""

    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def read(self, periods: Mapping[str, int], window: float) -> tuple[float, dict[str, WindowCounts]]:
        """The database's time and each counter's figures (``periods``: counter -> its budget period);
        rows the window has passed and expired leases of these counters are swept on the way."""
        names = list(periods)
        rows = (await self._conn.execute(_READ, {"counters": names, "periods": [periods[n] for n in names],
                                                 "window": float(window), "sweep": SWEEP_ROWS})).all()
        now = float(rows[0][1]) if rows else 0.0
        return now, {row[0]: WindowCounts(int(row[2]), int(row[3]), row[4], int(row[5]), row[6], int(row[7]))
                     for row in rows}

    async def count(self, request_id: str, rpm: Sequence[str], parallel: Sequence[str], lease_seconds: float) -> None:
        """The admitted call: an event in the rpm window of each of ``rpm``, a lease on each of ``parallel``."""
        if rpm or parallel:
            await self._conn.execute(_COUNT, {"request_id": request_id, "rpm": list(rpm),
                                              "parallel": list(parallel), "lease": float(lease_seconds)})


def lock_keys(counters: Iterable[str]) -> list[int]:
    """64-bit advisory lock keys, sorted and distinct: every instance locks in one order (no deadlock),
    and two counters sharing a key (1 in 2^64) only wait for each other."""
    keys = {int.from_bytes(hashlib.blake2b(c.encode(), digest_size=8, person=b"spangate-limit").digest(),
                           "big", signed=True) for c in counters}
    return sorted(keys)


# unnest of an array yields its elements in order, so the locks are taken in the order given.
_LOCK = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS BIGINT[])) AS k")
_READ = text(f"""
WITH clock AS MATERIALIZED (SELECT clock_timestamp() AS now),
swept AS (DELETE FROM limit_events WHERE ctid = ANY(ARRAY(
    SELECT e.ctid FROM limit_events e, clock WHERE e.counter = ANY(CAST(:counters AS TEXT[]))
    AND e.kind IN ({_CALL}, {_TOKENS})
    AND e.at <= clock.now - CAST(:window AS FLOAT8) * INTERVAL '1 second' LIMIT :sweep))),
expired AS (DELETE FROM limit_leases WHERE ctid = ANY(ARRAY(
    SELECT l.ctid FROM limit_leases l, clock WHERE l.counter = ANY(CAST(:counters AS TEXT[]))
    AND l.expires_at <= clock.now LIMIT :sweep)))
SELECT c.counter, extract(epoch FROM clock.now)::FLOAT8, coalesce(s.spend_nanos, 0),
       calls.n, calls.first, toks.n, toks.first, leases.n
FROM unnest(CAST(:counters AS TEXT[]), CAST(:periods AS BIGINT[])) AS c(counter, period)
CROSS JOIN clock
LEFT JOIN spend_counters s ON s.counter = c.counter AND s.period = c.period
CROSS JOIN LATERAL (SELECT count(*) AS n, extract(epoch FROM min(e.at))::FLOAT8 AS first FROM limit_events e
    WHERE e.counter = c.counter AND e.kind = {_CALL}
    AND e.at > clock.now - CAST(:window AS FLOAT8) * INTERVAL '1 second') AS calls
CROSS JOIN LATERAL (SELECT coalesce(sum(e.tokens), 0) AS n, extract(epoch FROM min(e.at))::FLOAT8 AS first
    FROM limit_events e WHERE e.counter = c.counter AND e.kind = {_TOKENS}
    AND e.at > clock.now - CAST(:window AS FLOAT8) * INTERVAL '1 second') AS toks
CROSS JOIN LATERAL (SELECT count(*) AS n FROM limit_leases l
    WHERE l.counter = c.counter AND l.expires_at > clock.now) AS leases
""")
_COUNT = text(f"""
WITH calls AS (INSERT INTO limit_events (counter, kind, request_id, at, tokens)
    SELECT c, {_CALL}, :request_id, clock_timestamp(), 0 FROM unnest(CAST(:rpm AS TEXT[])) AS c
    ON CONFLICT DO NOTHING)
INSERT INTO limit_leases (counter, request_id, expires_at)
SELECT c, :request_id, clock_timestamp() + CAST(:lease AS FLOAT8) * INTERVAL '1 second'
FROM unnest(CAST(:parallel AS TEXT[])) AS c
ON CONFLICT (counter, request_id) DO UPDATE SET expires_at = excluded.expires_at
""")
_SETTLE = text(f"""
WITH tokens AS (INSERT INTO limit_events (counter, kind, request_id, at, tokens)
    SELECT c, {_TOKENS}, :request_id, clock_timestamp(), :tokens FROM unnest(CAST(:tpm AS TEXT[])) AS c
    ON CONFLICT DO NOTHING)
DELETE FROM limit_leases WHERE request_id = :request_id AND counter = ANY(CAST(:parallel AS TEXT[]))
""")
