"""The spool's ``dead_letters`` table: its migration, listing, replay and retention, as SQL.

Every function runs on the spool's connection under the spool's lock (``SqliteSpool`` calls them);
the ones that write run inside the caller's transaction, so a replay moves a row from the dead
letters to the queue or leaves it, never both: a span replayed twice at once is sent once.
"""

from __future__ import annotations

import sqlite3

from ..codec import CorruptRecord, peek
from ..config import EXPIRED, OVER_LIMIT, DeadLetter, Selection

Moved = tuple[int, int, float | None]  # (spans put back on the queue, their bytes, their queue time)


def migrate(db: sqlite3.Connection) -> None:
    """Spools written before the ledger lack the short reason and the indexes the sweep reads."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(dead_letters)")}
    if "reason" not in columns:
        db.execute("ALTER TABLE dead_letters ADD COLUMN reason TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE INDEX IF NOT EXISTS dead_letters_by_dest ON dead_letters (dest, id)")
    db.execute("CREATE INDEX IF NOT EXISTS dead_letters_by_time ON dead_letters (at)")


def recent(db: sqlite3.Connection, key: str, limit: int) -> list[tuple[float, int | None, str, str, bytes]]:
    """The newest ``limit`` rows of ``key``, oldest first; decoded by ``letter`` outside the lock."""
    rows = db.execute("SELECT at, status, detail, reason, data FROM dead_letters WHERE dest = ? "
                      "ORDER BY id DESC LIMIT ?", (key, limit)).fetchall()
    return rows[::-1]


def letter(key: str, row: tuple[float, int | None, str, str, bytes]) -> DeadLetter:
    at, status, detail, reason, data = row
    try:
        trace_id, span_id, ended_at, model = peek(data)
    except CorruptRecord:
        return DeadLetter(key, 0, status, detail, at, reason=reason)
    return DeadLetter(key, span_id, status, detail, at, trace_id, model, ended_at, reason)


def count(db: sqlite3.Connection, key: str) -> int:
    return db.execute("SELECT COUNT(*) FROM dead_letters WHERE dest = ?", (key,)).fetchone()[0]


def replay(db: sqlite3.Connection, key: str, pick: Selection, now: float) -> Moved:
    """Move the chosen dead letters of ``key`` back to the end of its queue, in their order; their
    bytes are the span as it was refused, so the destination's dedupe keys (span ids) are the same."""
    if pick.everything:  # no need to read the records themselves
        rows = db.execute("SELECT id, length(data) FROM dead_letters WHERE dest = ? ORDER BY id", (key,)).fetchall()
    else:
        found = db.execute("SELECT id, data FROM dead_letters WHERE dest = ? ORDER BY id", (key,)).fetchall()
        rows = [(row_id, len(data)) for row_id, data in found if _takes(pick, data)]
    if not rows:
        return 0, 0, None
    ids = [(row_id,) for row_id, _size in rows]
    db.executemany("INSERT INTO spans (dest, at, data) SELECT dest, ?, data FROM dead_letters WHERE id = ?",
                   [(now, row_id) for (row_id,) in ids])
    db.executemany("DELETE FROM dead_letters WHERE id = ?", ids)
    return len(rows), sum(size for _id, size in rows), now


def _takes(pick: Selection, data: bytes) -> bool:
    try:
        _trace_id, span_id, ended_at, _model = peek(data)
    except CorruptRecord:  # nothing to match a filter against: only "everything" takes it
        return False
    return pick.takes(span_id, ended_at)


def sweep(db: sqlite3.Connection, cutoff: float, per_destination: int) -> dict[str, dict[str, int]]:
    """Drop what is older than ``cutoff`` (unix seconds), then each destination's oldest beyond
    ``per_destination``; returns key -> reason -> how many were dropped."""
    dropped: dict[str, dict[str, int]] = {}
    for key, n in db.execute("SELECT dest, COUNT(*) FROM dead_letters WHERE at < ? GROUP BY dest", (cutoff,)):
        dropped.setdefault(key, {})[EXPIRED] = n
    db.execute("DELETE FROM dead_letters WHERE at < ?", (cutoff,))
    over = db.execute("SELECT dest, COUNT(*) - ? FROM dead_letters GROUP BY dest HAVING COUNT(*) > ?",
                      (per_destination, per_destination)).fetchall()
    for key, n in over:
        db.execute("DELETE FROM dead_letters WHERE id IN "
                   "(SELECT id FROM dead_letters WHERE dest = ? ORDER BY id LIMIT ?)", (key, n))
        dropped.setdefault(key, {})[OVER_LIMIT] = n
    return dropped
