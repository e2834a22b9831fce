"""The durable store: one SQLite database per process, in WAL mode, partitioned by destination key.

Each gateway worker process claims a slot ``spool-N.db`` by taking a non-blocking ``flock`` on
``spool-N.lock``; the kernel releases it when the process dies, so a restarted process claims the
dead one's slot and drains it. Nothing on the submit path touches the file or the lock.

A damaged database (truncated, not a database, failing ``quick_check``) is moved to
``quarantine/`` with its WAL, the rows that can still be read are copied into a fresh file, and
start-up carries on. Records that fail to decode later are moved to the ``quarantine`` table.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sqlite3
import threading
import time
from itertools import islice
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan

from .config import DeadLetter, Selection
from .deadletter import table
from .queues import KeyStats, Record

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (id INTEGER PRIMARY KEY AUTOINCREMENT, dest TEXT NOT NULL,
    at REAL NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS spans_by_dest ON spans (dest, id);
CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY, dest TEXT NOT NULL, at REAL NOT NULL,
    status INTEGER, detail TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine (id INTEGER PRIMARY KEY, dest TEXT NOT NULL, at REAL NOT NULL,
    reason TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS destinations (key TEXT PRIMARY KEY, team TEXT, name TEXT NOT NULL);
"""


_MAGIC = b"SQLite format 3\x00"


class SlotsTaken(RuntimeError):
    """Every spool slot is locked by a live process."""


def claim_slot(spool_dir: Path, max_slots: int) -> tuple[int, int]:
    """Lock the first free slot; returns (slot, fd of the held lock file)."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    for slot in range(max_slots):
        fd = os.open(spool_dir / f"spool-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return slot, fd
        except BlockingIOError:
            os.close(fd)
    raise SlotsTaken(f"all {max_slots} spool slots in {spool_dir} are held by live processes")


def release_slot(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


# Acknowledged ids waiting for the writer's next transaction; beyond this many, ``ack`` deletes them
# itself (a writer that is not committing must not let the list grow).
_ACKS_HELD = 4096


class SqliteSpool:
    """One connection shared by the writer and the workers behind a lock: statements are short.

    Beside the rows it keeps, per destination, up to ``cached_spans`` of the committed spans
    themselves (row id -> (submitted at, size, span)), so ``read`` hands them out without decoding;
    rows without a copy (evicted, or spooled by an earlier process) carry only their bytes and the
    sender decodes them. While every row of a destination after its cursor has a copy (the usual
    case: a healthy destination's queue is a few batches), ``read`` does not touch the database.

    ``ack`` does not write either: the acknowledged ids are deleted in the writer's next
    transaction (``commit``, or ``flush_acks`` when it has nothing to commit), so a run of one span
    costs no transaction of its own. A crash before that transaction sends those spans again after
    the restart: delivery is at least once, as it always was for the batch in flight.
    """

    encodes = True

    def __init__(self, path: Path, logger: logging.Logger, cached_spans: int = 0) -> None:
        self.path = path
        self.quarantined_files = 0
        self.salvaged_records = 0
        self._log = logger
        self._lock = threading.Lock()
        self._cursor: dict[str, int] = {}
        self._cache_size = cached_spans
        # ids ascending, all after the cursor: row id -> (submitted at, size, span)
        self._cache: dict[str, dict[int, tuple[float, int, ReadableSpan]]] = {}
        # Keys whose rows after the cursor all have a copy in ``_cache``: ``read`` skips the database.
        # A key joins when a database read finds nothing more after what it returned, and leaves when
        # a committed row gets no copy.
        self._in_memory: set[str] = set()
        self._acked: list[tuple[int]] = []
        self._db = self._open_or_quarantine()

    # -- opening -----------------------------------------------------------------------------
    def _open_or_quarantine(self) -> sqlite3.Connection:
        try:
            return _connect(self.path, check=True)
        except sqlite3.DatabaseError as exc:
            self._log.error("spool %s is damaged (%s): quarantining it", self.path, exc)
        damaged = self._move_aside()
        db = _connect(self.path, check=False)
        self.salvaged_records = _salvage(damaged, into=db)
        return db

    def _move_aside(self) -> Path:
        """Move the damaged file and its WAL into ``quarantine/``; returns the moved main file."""
        target = self.path.parent / "quarantine"
        target.mkdir(exist_ok=True)
        stamp = f"{time.strftime('%Y%m%dT%H%M%S')}.{os.getpid()}"
        for suffix in ("-wal", "-shm", ""):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                src.rename(target / f"{self.path.name}{suffix}.{stamp}")
        self.quarantined_files += 1
        return target / f"{self.path.name}.{stamp}"

    # -- start-up view -----------------------------------------------------------------------
    def load(self) -> dict[str, KeyStats]:
        with self._lock:
            names = {k: (t, n) for k, t, n in self._db.execute("SELECT key, team, name FROM destinations")}
            rows = self._db.execute("SELECT dest, COUNT(*), SUM(length(data)), MIN(at) FROM spans GROUP BY dest")
            stats = {}
            for key, count, size, oldest in rows:
                team, name = names.get(key, (None, key))
                stats[key] = KeyStats(count, size or 0, oldest, team, name)
            return stats

    def remember(self, key: str, team: str | None, name: str) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO destinations VALUES (?, ?, ?)", (key, team, name))

    # -- queue operations ----------------------------------------------------------------------
    def measure(self, item: bytes) -> int:
        return len(item)

    def commit(
        self,
        rows: dict[str, list[tuple[float, bytes]]],
        excess: dict[str, int],
        spans: dict[str, list[ReadableSpan]] | None = None,
    ) -> dict[str, tuple[int, int]]:
        """Append rows and enforce caps in one transaction; returns key -> (dropped, bytes freed).

        ``spans``, when given, are the spans the rows encode (same keys, same order): kept in memory.
        """
        flat = [(key, at, data) for key, items in rows.items() for at, data in items]
        with self._lock:
            acked, copied = self._acked, []
            try:
                with self._db:
                    self._delete_acked()
                    self._db.executemany("INSERT INTO spans (dest, at, data) VALUES (?, ?, ?)", flat)
                    if not (spans and self._cache_size and self._remember_spans(rows, spans, len(flat), copied)):
                        self._in_memory.difference_update(rows)
                    return {key: self._drop(key, amount) for key, amount in excess.items() if amount > 0}
            except BaseException:  # rolled back: the acknowledged rows are still there, the new ones are not
                self._acked = acked + self._acked
                for key, row_id in copied:
                    self._cache.get(key, {}).pop(row_id, None)
                # and ``_drop`` may have taken copies of rows that are back: read those keys from disk
                self._in_memory.difference_update(rows)
                self._in_memory.difference_update(excess)
                raise

    def flush_acks(self) -> None:
        """Delete what was acknowledged since the last transaction (the writer, when idle)."""
        with self._lock:
            self._flush_acks_locked()

    def _flush_acks_locked(self) -> None:
        acked = self._acked
        if acked:
            try:
                with self._db:
                    self._delete_acked()
            except BaseException:
                self._acked = acked + self._acked
                raise

    def _delete_acked(self) -> None:
        if self._acked:
            self._db.executemany("DELETE FROM spans WHERE id = ?", self._acked)
            self._acked = []

    def _remember_spans(
        self, rows: dict[str, list[tuple[float, bytes]]], spans: dict[str, list[ReadableSpan]], n: int,
        copied: list[tuple[str, int]],
    ) -> bool:
        """Map the new row ids to their spans; the ids of one executemany are consecutive.

        ``False`` when nothing was cached; keys with a row left without a copy leave ``_in_memory``.
        ``copied`` gets (key, row id) of each copy, for the caller to take back if the commit fails.
        """
        last = self._db.execute("SELECT last_insert_rowid()").fetchone()[0]
        first = last - n + 1
        # Checked, not assumed: if SQLite ever skipped an id, copies would be attached to the
        # wrong rows. Then nothing is cached and the sender decodes, as after a restart.
        if self._db.execute("SELECT COUNT(*) FROM spans WHERE id >= ?", (first,)).fetchone()[0] != n:
            return False
        row_id = first
        for key, items in rows.items():
            cache = self._cache.setdefault(key, {})
            for (at, data), span in zip(items, spans[key], strict=True):
                if len(cache) < self._cache_size:
                    cache[row_id] = (at, len(data), span)
                    copied.append((key, row_id))
                else:
                    self._in_memory.discard(key)
                row_id += 1
        return True

    def _drop(self, key: str, amount: int) -> tuple[int, int]:
        cursor, freed, count, last = self._cursor.get(key, 0), 0, 0, None
        cache = self._cache.get(key, {})
        query = "SELECT id, length(data) FROM spans WHERE dest = ? AND id > ? ORDER BY id"
        for row_id, size in self._db.execute(query, (key, cursor)):
            if freed >= amount:
                break
            freed, count, last = freed + size, count + 1, row_id
            cache.pop(row_id, None)
        if last is not None:
            self._db.execute("DELETE FROM spans WHERE dest = ? AND id > ? AND id <= ?", (key, cursor, last))
        return count, freed

    def read(self, key: str, limit: int) -> list[Record]:
        with self._lock:
            records = self._read(key, limit)
            if key in self._cache and not self._cache[key]:
                del self._cache[key]  # a quiet destination between batches holds no dict (1,000 teams)
            return records

    def _read(self, key: str, limit: int) -> list[Record]:
        cache = self._cache.get(key)
        if key in self._in_memory:
            return self._read_memory(key, cache or {}, limit)
        rows = self._db.execute(
            "SELECT id, at, data FROM spans WHERE dest = ? AND id > ? ORDER BY id LIMIT ?",
            (key, self._cursor.get(key, 0), limit),
        ).fetchall()
        if rows:
            self._cursor[key] = rows[-1][0]
        if len(rows) < limit:  # nothing after these: every later row is committed with a copy
            self._in_memory.add(key)
        if not cache:
            return [Record(row_id, at, len(data), data=data) for row_id, at, data in rows]
        records = []
        for row_id, at, data in rows:
            copy = cache.pop(row_id, None)
            records.append(Record(row_id, at, len(data), data=data, span=None if copy is None else copy[2]))
        return records

    def _read_memory(self, key: str, cache: dict[int, tuple[float, int, ReadableSpan]], limit: int) -> list[Record]:
        records = []
        for row_id in list(islice(cache, limit)):
            at, size, span = cache.pop(row_id)
            records.append(Record(row_id, at, size, span=span))
        if records:
            self._cursor[key] = records[-1].id
        return records

    def ack(self, key: str, records: list[Record]) -> None:
        with self._lock:
            self._acked.extend((r.id,) for r in records)
            if len(self._acked) >= _ACKS_HELD:
                self._flush_acks_locked()

    def dead_letter(self, key: str, records: list[Record], status: int | None, detail: str, reason: str = "") -> None:
        self._move(
            records,
            "INSERT INTO dead_letters (dest, at, status, detail, reason, data) "
            "SELECT dest, ?, ?, ?, ?, data FROM spans WHERE id = ?",
            (time.time(), status, detail, reason),
        )

    def quarantine(self, key: str, records: list[Record], reason: str) -> None:
        self._move(
            records,
            "INSERT INTO quarantine (dest, at, reason, data) SELECT dest, ?, ?, data FROM spans WHERE id = ?",
            (time.time(), reason),
        )

    def _move(self, records: list[Record], insert: str, extra: tuple[object, ...]) -> None:
        with self._lock, self._db:
            self._db.executemany(insert, [(*extra, r.id) for r in records])
            self._db.executemany("DELETE FROM spans WHERE id = ?", [(r.id,) for r in records])

    def dead_letters(self, key: str, limit: int = 100) -> list[DeadLetter]:
        with self._lock:
            rows = table.recent(self._db, key, limit)
        return [table.letter(key, row) for row in rows]  # decoded outside the lock

    def dead_letter_count(self, key: str) -> int:
        with self._lock:
            return table.count(self._db, key)

    def replay(self, key: str, pick: Selection) -> table.Moved:
        with self._lock, self._db:
            moved = table.replay(self._db, key, pick, time.time())
            if moved[0]:
                self._in_memory.discard(key)  # rows without a copy now follow the cursor: read from disk
            return moved

    def sweep_dead_letters(self, cutoff: float, per_destination: int) -> dict[str, dict[str, int]]:
        with self._lock, self._db:
            return table.sweep(self._db, cutoff, per_destination)

    def close(self) -> None:
        with self._lock:
            try:
                self._flush_acks_locked()
            except sqlite3.Error:  # the rows stay: sent again after the restart, never lost
                self._log.exception("spool: deleting acknowledged spans at close failed")
            self._cache.clear()
            self._in_memory.clear()
            self._db.close()


def _connect(path: Path, *, check: bool) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (``with db`` commits); check_same_thread
    # off because the lock in SqliteSpool serialises every use.
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        if check and db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("quick_check failed")
        db.executescript(_SCHEMA)
        table.migrate(db)
        db.isolation_level = ""  # ``with db`` now opens a transaction implicitly
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


def _salvage(path: Path, into: sqlite3.Connection) -> int:
    """Best effort: copy the rows of a damaged spool that can still be read, in order.

    A truncated file still claims its old page count in the header and SQLite then refuses even
    the schema; reading a copy whose header matches the pages actually present gets everything
    before the first missing page.
    """
    copy = path.with_name(path.name + ".salvage")
    try:
        return _copy_rows(copy, into) if _copy_with_true_size(path, copy) else 0
    except OSError:
        return 0
    finally:
        copy.unlink(missing_ok=True)


def _copy_with_true_size(path: Path, copy: Path) -> bool:
    shutil.copyfile(path, copy)
    with copy.open("r+b") as f:
        header = f.read(100)
        if len(header) < 100 or not header.startswith(_MAGIC):
            return False
        page = int.from_bytes(header[16:18], "big")
        page = 65536 if page == 1 else page
        pages = copy.stat().st_size // page
        f.truncate(pages * page)
        f.seek(28)
        f.write(pages.to_bytes(4, "big"))
    return True


def _copy_rows(copy: Path, into: sqlite3.Connection) -> int:
    copied = 0
    try:
        src = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    except sqlite3.Error:
        return 0
    try:
        rows = src.execute("SELECT dest, at, data FROM spans ORDER BY id")
        while chunk := rows.fetchmany(1000):
            good = [r for r in chunk if isinstance(r[0], str) and isinstance(r[2], bytes)]
            with into:
                into.executemany("INSERT INTO spans (dest, at, data) VALUES (?, ?, ?)", good)
            copied += len(good)
    except sqlite3.Error:
        pass  # keep what was read before the damage
    finally:
        src.close()
    return copied
