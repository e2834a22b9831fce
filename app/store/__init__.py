"""Persistence of teams, virtual keys, their logging callbacks, users and team members; see ``store.py``
and ``watch.py``."""

from app.store.records import (
    AlreadyExists,
    CallbackRecord,
    CallbackType,
    CallbackWrite,
    KeyCallbackRecord,
    KeyRecord,
    MemberRecord,
    MemberRole,
    MemberWrite,
    NotFound,
    SpendRow,
    StoreError,
    StoreSnapshot,
    StoreUnavailable,
    TeamRecord,
    UserRecord,
)
from app.store.store import Store
from app.store.watch import StoreWatcher

__all__ = [
    "AlreadyExists",
    "CallbackRecord",
    "CallbackType",
    "CallbackWrite",
    "KeyCallbackRecord",
    "KeyRecord",
    "MemberRecord",
    "MemberRole",
    "MemberWrite",
    "NotFound",
    "SpendRow",
    "Store",
    "StoreError",
    "StoreSnapshot",
    "StoreUnavailable",
    "StoreWatcher",
    "TeamRecord",
    "UserRecord",
]
