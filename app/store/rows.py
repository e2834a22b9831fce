"""Rows to records and back: the column lists in record order, and the snapshot's shared strings."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from typing import Any

from sqlalchemy import ColumnElement, Row, Table

from app.store.records import (
    CallbackRecord,
    CallbackType,
    KeyCallbackRecord,
    KeyRecord,
    MemberRecord,
    TeamRecord,
    UserRecord,
)
from app.store.schema import callbacks, key_callbacks, keys, team_members, teams, users


def callback_type_of(value: str) -> CallbackType:
    try:
        return CallbackType(value)
    except ValueError:
        allowed = ", ".join(t.value for t in CallbackType)
        raise ValueError(f"callback_type must be one of {allowed}, not {value!r}") from None


def in_request_order(requested: list[str], found: set[str]) -> list[str]:
    return [item for item in dict.fromkeys(requested) if item in found]


def values_of(record: TeamRecord | KeyRecord | UserRecord | MemberRecord) -> dict[str, Any]:
    return {field.name: getattr(record, field.name) for field in fields(record)}


def _columns(table: Table, record_type: type) -> tuple[ColumnElement[Any], ...]:
    """The table's columns in the record's field order, so rows unpack straight into records
    (the column types already return tuples, dicts, aware datetimes and CallbackType)."""
    return tuple(table.c[field.name] for field in fields(record_type))


TEAM_COLUMNS = _columns(teams, TeamRecord)
KEY_COLUMNS = _columns(keys, KeyRecord)
CALLBACK_COLUMNS = _columns(callbacks, CallbackRecord)
KEY_CALLBACK_COLUMNS = _columns(key_callbacks, KeyCallbackRecord)
USER_COLUMNS = _columns(users, UserRecord)
MEMBER_COLUMNS = _columns(team_members, MemberRecord)


def team_of(row: Row[Any]) -> TeamRecord:
    return TeamRecord(*row)


def key_of(row: Row[Any]) -> KeyRecord:
    return KeyRecord(*row)


def callback_of(row: Row[Any]) -> CallbackRecord:
    return CallbackRecord(*row)


_KEY_TEAM_ID = [f.name for f in fields(KeyRecord)].index("team_id")
_CALLBACK_TEAM_ID, _CALLBACK_NAME = (
    [f.name for f in fields(CallbackRecord)].index(name) for name in ("team_id", "callback_name"))


def key_named(row: Row[Any], names: dict[str, str]) -> KeyRecord:
    """``_key`` with the team id taken from ``names`` (the snapshot's one copy) when it is there."""
    values = list(row)
    values[_KEY_TEAM_ID] = names.get(values[_KEY_TEAM_ID], values[_KEY_TEAM_ID])
    return KeyRecord(*values)


def callback_named(row: Row[Any], names: dict[str, str]) -> CallbackRecord:
    """``_callback`` with team id and callback name shared through ``names`` (added when new)."""
    values = list(row)
    for index in (_CALLBACK_TEAM_ID, _CALLBACK_NAME):
        values[index] = names.setdefault(values[index], values[index])
    return CallbackRecord(*values)


def key_callback_of(row: Row[Any]) -> KeyCallbackRecord:
    return KeyCallbackRecord(*row)


def grouped_by_key(records: Iterable[KeyCallbackRecord]) -> dict[str, tuple[KeyCallbackRecord, ...]]:
    grouped: dict[str, list[KeyCallbackRecord]] = {}
    for record in records:
        grouped.setdefault(record.token_hash, []).append(record)
    return {token: tuple(entries) for token, entries in grouped.items()}


def user_of(row: Row[Any]) -> UserRecord:
    return UserRecord(*row)


def member_of(row: Row[Any]) -> MemberRecord:
    return MemberRecord(*row)
