"""Persistence of teams, virtual keys and team callbacks; see ``store.py`` and ``watch.py``."""

from app.store.records import (
    AlreadyExists,
    CallbackRecord,
    CallbackType,
    KeyRecord,
    NotFound,
    StoreError,
    StoreSnapshot,
    StoreUnavailable,
    TeamRecord,
)
from app.store.store import Store
from app.store.watch import StoreWatcher

__all__ = [
    "AlreadyExists",
    "CallbackRecord",
    "CallbackType",
    "KeyRecord",
    "NotFound",
    "Store",
    "StoreError",
    "StoreSnapshot",
    "StoreUnavailable",
    "StoreWatcher",
    "TeamRecord",
]
