"""A full disk under the gateway's spool, without root: SQLite's own disk-full answer.

``PRAGMA max_page_count`` at the pages the spool file has makes every write that needs a new page
fail with ``SQLITE_FULL`` ("database or disk is full"), the error a full filesystem gives; lifting
it is space returning. A tmpfs filled with ``dd`` behaves the same (checked by hand) but needs root
to mount. The pragma is per connection, so this reaches the spool's own connection, under its lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from app.server.factory import Gateway

_ROOMY = 1 << 30  # SQLite's default max_page_count


@contextmanager
def spool_disk_full(gateway: Gateway) -> Iterator[None]:
    store = gateway.delivery._spool
    spool = getattr(store, "_spool", store)  # the SqliteSpool inside the FallbackSpool
    with spool._lock:
        pages = spool._db.execute("PRAGMA page_count").fetchone()[0]
        spool._db.execute(f"PRAGMA max_page_count = {pages}")
    try:
        yield
    finally:
        with spool._lock:
            spool._db.execute(f"PRAGMA max_page_count = {_ROOMY}")
