"""Persistence of teams, virtual keys and their logging callbacks; see ``store.py`` and ``watch.py``."""

from app.store.records import (
    AlreadyExists,
    CallbackRecord,
    CallbackType,
    CallbackWrite,
    KeyCallbackRecord,
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
    "CallbackWrite",
    "KeyCallbackRecord",
    "KeyRecord",
    "NotFound",
    "Store",
    "StoreError",
    "StoreSnapshot",
    "StoreUnavailable",
    "StoreWatcher",
    "TeamRecord",
]
