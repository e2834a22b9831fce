"""Tables, and the ordered migration steps that build them.

The applied step count is recorded in ``schema_version``; opening a store runs the steps it has not
seen yet, inside one transaction that also holds a lock, so two gateways starting together on one
PostgreSQL do not both create the tables.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Dialect,
    Index,
    SmallInteger,
    String,
    Table,
    Text,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from app.store.records import CallbackType, MemberRole, StoreError

log = logging.getLogger("spangate.store")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (no time zones) and PostgreSQL."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the store only takes time-zone-aware datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class JSONList(TypeDecorator[tuple[Any, ...]]):
    """A JSON array stored as text, read back as a tuple ready for a frozen record.

    Text rather than the JSON type, and "[]" short-circuited, because decoding dominates the cost of
    a snapshot and most keys have no model list: see the store figures in the merge notes.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str:
        return json.dumps(list(value or ()), separators=(",", ":"))

    def process_result_value(self, value: str | None, dialect: Dialect) -> tuple[Any, ...]:
        return () if value is None or value == "[]" else tuple(json.loads(value))


class JSONObject(TypeDecorator[dict[str, Any]]):
    """A JSON object stored as text; "{}" skips the decoder (but still yields a fresh dict)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str:
        return json.dumps(dict(value or {}), separators=(",", ":"))

    def process_result_value(self, value: str | None, dialect: Dialect) -> dict[str, Any]:
        return {} if value is None or value == "{}" else json.loads(value)


class CallbackTypeText(TypeDecorator[CallbackType]):
    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str:
        return CallbackType(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> CallbackType:
        return CallbackType(value)


class MemberRoleText(TypeDecorator[MemberRole]):
    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str:
        return MemberRole(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> MemberRole:
        return MemberRole(value)


class Base(DeclarativeBase):
    type_annotation_map = {
        datetime: UTCDateTime,
        dict[str, Any]: JSONObject,
        list[str]: JSONList,
        CallbackType: CallbackTypeText,
    }


class TeamRow(Base):
    __tablename__ = "teams"

    team_id: Mapped[str] = mapped_column(Text, primary_key=True)
    team_alias: Mapped[str | None] = mapped_column(Text)
    models: Mapped[list[str]]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata")
    logging_disabled: Mapped[bool]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    max_budget: Mapped[float | None]
    soft_budget: Mapped[float | None]
    budget_duration: Mapped[str | None] = mapped_column(Text)
    budget_anchor: Mapped[datetime | None]
    tpm_limit: Mapped[int | None] = mapped_column(BigInteger)
    rpm_limit: Mapped[int | None] = mapped_column(BigInteger)
    max_parallel_requests: Mapped[int | None]


class KeyRow(Base):
    """team_id has no foreign key: a key may belong to a team that exists only in the config file."""

    __tablename__ = "keys"
    __table_args__ = (Index("ix_keys_team_id", "team_id"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_prefix: Mapped[str] = mapped_column(Text)
    key_alias: Mapped[str | None] = mapped_column(Text)
    team_id: Mapped[str | None] = mapped_column(Text)
    models: Mapped[list[str]]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata")
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    user_id: Mapped[str | None] = mapped_column(Text)  # added by step 4; no foreign key, as for team_id
    # the limits, added by step 5
    max_budget: Mapped[float | None]
    soft_budget: Mapped[float | None]
    budget_duration: Mapped[str | None] = mapped_column(Text)
    budget_anchor: Mapped[datetime | None]
    tpm_limit: Mapped[int | None] = mapped_column(BigInteger)
    rpm_limit: Mapped[int | None] = mapped_column(BigInteger)
    max_parallel_requests: Mapped[int | None]


class UserRow(Base):
    __tablename__ = "users"

    user_id: Mapped[str] = mapped_column(Text, primary_key=True)
    user_email: Mapped[str | None] = mapped_column(Text)
    user_role: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class TeamMemberRow(Base):
    """One user's role in one team. No foreign keys, as for keys: the team may exist only in the config."""

    __tablename__ = "team_members"
    __table_args__ = (
        CheckConstraint("role IN (" + ", ".join(f"'{r.value}'" for r in MemberRole) + ")",
                        name="ck_team_members_role"),
        Index("ix_team_members_user_id", "user_id"),
    )

    team_id: Mapped[str] = mapped_column(Text, primary_key=True)
    user_id: Mapped[str] = mapped_column(Text, primary_key=True)
    role: Mapped[MemberRole] = mapped_column(MemberRoleText)
    created_at: Mapped[datetime]


class CallbackRow(Base):
    """The primary key is the (team, name, type) uniqueness rule; no foreign key, as for keys."""

    __tablename__ = "team_callbacks"
    __table_args__ = (
        CheckConstraint(
            "callback_type IN (" + ", ".join(f"'{t.value}'" for t in CallbackType) + ")",
            name="ck_team_callbacks_type",
        ),
    )

    team_id: Mapped[str] = mapped_column(Text, primary_key=True)
    callback_name: Mapped[str] = mapped_column(Text, primary_key=True)
    callback_type: Mapped[CallbackType] = mapped_column(primary_key=True)
    vars_ciphertext: Mapped[str | None] = mapped_column(Text)
    secret_var_names: Mapped[list[str]]
    plain_vars: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class KeyCallbackRow(Base):
    """A key's own logging entries, one row per (key, name, type) as for teams. Kept out of the key's
    metadata column so secrets sit encrypted in their own column and the metadata stays plain JSON."""

    __tablename__ = "key_callbacks"
    __table_args__ = (
        CheckConstraint(
            "callback_type IN (" + ", ".join(f"'{t.value}'" for t in CallbackType) + ")",
            name="ck_key_callbacks_type",
        ),
    )

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    callback_name: Mapped[str] = mapped_column(Text, primary_key=True)
    callback_type: Mapped[CallbackType] = mapped_column(primary_key=True)
    vars_ciphertext: Mapped[str | None] = mapped_column(Text)
    secret_var_names: Mapped[list[str]]
    plain_vars: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class SpendLogRow(Base):
    """One row per call (``app.store.records.SpendRow``); the primary key makes recording idempotent."""

    __tablename__ = "spend_logs"
    __table_args__ = (Index("ix_spend_logs_key_time", "token_hash", "start_time"),
                      Index("ix_spend_logs_team_time", "team_id", "start_time"),
                      Index("ix_spend_logs_time", "start_time"))

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str | None] = mapped_column(String(64))
    team_id: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(Text)
    call_type: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    completion_tokens: Mapped[int] = mapped_column(BigInteger)
    total_tokens: Mapped[int] = mapped_column(BigInteger)
    spend_nanos: Mapped[int] = mapped_column(BigInteger)
    start_time: Mapped[datetime]
    end_time: Mapped[datetime]
    key_period: Mapped[int] = mapped_column(BigInteger)
    team_period: Mapped[int] = mapped_column(BigInteger)


class SpendCounterRow(Base):
    """Spend and tokens of one key or team (``counter``: ``key:<hash>`` / ``team:<id>``) in one budget
    period (its start in unix seconds; 0 for a budget without a duration). Integers: sums are exact."""

    __tablename__ = "spend_counters"

    counter: Mapped[str] = mapped_column(Text, primary_key=True)
    period: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    spend_nanos: Mapped[int] = mapped_column(BigInteger)
    tokens: Mapped[int] = mapped_column(BigInteger)


class StateRow(Base):
    """One row; ``version`` goes up in the same transaction as every change, for the watchers."""

    __tablename__ = "store_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class SchemaVersionRow(Base):
    __tablename__ = "schema_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int]


def _table(row: type[Base]) -> Table:
    table = row.__table__
    assert isinstance(table, Table)
    return table


teams = _table(TeamRow)
keys = _table(KeyRow)
callbacks = _table(CallbackRow)
key_callbacks = _table(KeyCallbackRow)
users = _table(UserRow)
team_members = _table(TeamMemberRow)
spend_logs = _table(SpendLogRow)
spend_counters = _table(SpendCounterRow)
# The PostgreSQL limits backend's sliding windows (kind 0: an admitted call, for rpm; 1: a settled call's
# tokens, for tpm; at: the database's clock) and parallel slots (leases: a killed instance's slots expire).
limit_events = Table("limit_events", Base.metadata, Column("counter", Text, primary_key=True),
                     Column("kind", SmallInteger, primary_key=True), Column("request_id", Text, primary_key=True),
                     Column("at", DateTime(timezone=True), nullable=False),
                     Column("tokens", BigInteger, nullable=False), Index("ix_limit_events_at", "counter", "kind", "at"))
limit_leases = Table("limit_leases", Base.metadata, Column("counter", Text, primary_key=True),
                     Column("request_id", Text, primary_key=True),
                     Column("expires_at", DateTime(timezone=True), nullable=False))
state = _table(StateRow)
schema_version = _table(SchemaVersionRow)


def _v1_create(conn: Connection) -> None:
    # Frozen to the tables v1 had: a later step that adds or changes a table does so itself, or a
    # fresh database would get the later shape here and then have the later step applied again.
    Base.metadata.create_all(conn, tables=[teams, keys, callbacks, state, schema_version])
    conn.execute(state.insert().values(id=1, version=0))
    conn.execute(schema_version.insert().values(id=1, version=0))


def _v2_key_callbacks(conn: Connection) -> None:
    key_callbacks.create(conn)


def _v3_scrub_raw_logging(conn: Connection) -> None:
    """Before key- and team-level ``metadata.logging`` was understood, it was stored as given: its
    secrets in clear in the metadata column, and logged nowhere. Those entries never worked; they
    are removed (not converted: nothing checked them), and the log says which rows must send theirs
    again through ``/key/update`` or ``/team/update``."""
    for table, key_column in ((teams, teams.c.team_id), (keys, keys.c.token_hash)):
        rows = conn.execute(select(key_column, table.c.metadata)).all()
        stale = [(row_id, meta) for row_id, meta in rows if isinstance(meta, dict) and "logging" in meta]
        for row_id, meta in stale:
            kept = {name: value for name, value in meta.items() if name != "logging"}
            conn.execute(update(table).where(key_column == row_id).values(metadata=kept))
        if stale:
            shown = [str(row_id)[:12] for row_id, _ in stale[:10]]
            log.warning("store upgrade: removed %d never-applied metadata.logging entries (secrets stored in "
                        "clear by an older version) from %s: %s%s; send them again to enable that logging",
                        len(stale), table.name, ", ".join(shown), " ..." if len(stale) > 10 else "")


def _v4_users(conn: Connection) -> None:
    """Users, their team roles, and whose each key is. ``keys.user_id`` is added only where step 1
    made the table without it: step 1 builds ``keys`` from the current row class, which has it. Each
    part is checked first, so a database rewound to an older version number (tests do) upgrades too."""
    users.create(conn, checkfirst=True)
    team_members.create(conn, checkfirst=True)
    if "user_id" not in {column["name"] for column in inspect(conn).get_columns(keys.name)}:
        conn.execute(text("ALTER TABLE keys ADD COLUMN user_id TEXT"))


LIMIT_COLUMNS = ("max_budget", "soft_budget", "budget_duration", "budget_anchor", "tpm_limit", "rpm_limit",
                 "max_parallel_requests")


def _v5_limits_and_spend(conn: Connection) -> None:
    """Budgets and rate limits on keys and teams, the spend log and the spend counters. Columns are
    added only where step 1 made the table without them (as in step 4)."""
    for table in (teams, keys):
        present = {column["name"] for column in inspect(conn).get_columns(table.name)}
        for name in LIMIT_COLUMNS:
            if name not in present:
                kind = table.c[name].type.compile(dialect=conn.dialect)
                conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}"))
    spend_logs.create(conn, checkfirst=True)
    spend_counters.create(conn, checkfirst=True)


def _v6_limit_windows(conn: Connection) -> None:
    """The PostgreSQL limits backend's tables; made on SQLite too (unused) so a version is one schema."""
    limit_events.create(conn, checkfirst=True)
    limit_leases.create(conn, checkfirst=True)


Migration = Callable[[Connection], None]
MIGRATIONS: tuple[Migration, ...] = (_v1_create, _v2_key_callbacks, _v3_scrub_raw_logging, _v4_users,
                                     _v5_limits_and_spend, _v6_limit_windows)


def applied_version(conn: Connection) -> int:
    if not inspect(conn).has_table(schema_version.name):
        return 0
    return conn.scalar(select(schema_version.c.version)) or 0


def migrate(conn: Connection) -> int:
    """Apply the steps not yet recorded; the caller holds the migration lock and the transaction."""
    current = applied_version(conn)
    if current > len(MIGRATIONS):
        raise StoreError(
            f"the database schema is at version {current}, newer than this Spangate knows "
            f"({len(MIGRATIONS)}); upgrade Spangate or point it at another database"
        )
    for number, step in enumerate(MIGRATIONS[current:], start=current + 1):
        step(conn)
        conn.execute(update(schema_version).values(version=number))
    return len(MIGRATIONS)
