"""The spool's fallback for a disk that refuses writes: spans held in memory, bounded, until it works again.

On a full disk every spool commit failed: each durable span was dropped (``spool_error``) and the
writer logged a traceback on every pass, while readiness said all was well. ``FallbackSpool`` wraps
the ``SqliteSpool`` and changes what a refused write means:

- the rows of a commit the database refuses are held in memory instead, at most
  ``held_per_destination`` per destination (drop-oldest beyond, counted as ``spool_full``, the cap
  that was hit), and are read and sent like spooled ones;
- at most every ``retry_interval`` seconds a commit, or the writer's idle pass, tries the disk
  again, held rows first: when space returns they are spooled (durable again) in their order;
- one line says the spool started failing, a reminder every ``log_interval``, one when it works
  again; never a traceback. ``health()`` is what readiness and ``/health/destinations`` show.

Held records carry negative ids (spool rows are positive), so an acknowledgement finds its store
without a lookup. A held span is not durable: a crash while the disk is full loses it, as in
memory-only delivery.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.sdk.trace import ReadableSpan

from .config import DeadLetter, Selection, SpoolHealth
from .deadletter.memory import MemoryLetters
from .queues import KeyStats, Moved, Record
from .spool import SqliteSpool

_DISK_ERRORS = (sqlite3.Error, OSError)  # SQLITE_FULL, SQLITE_IOERR, EIO, ENOSPC from the lock files
_REASON_CHARS = 200

Rows = dict[str, list[tuple[float, bytes]]]


@dataclass(slots=True)
class _Outage:
    since: float  # unix time, for readers
    started: float  # monotonic
    reason: str
    retry_at: float
    logged_at: float
    announced: bool  # said in the log (a disk that flaps is announced once per log interval)
    held_total: int = 0  # spans that went to memory during this outage
    dropped: int = 0


class FallbackSpool:
    """The ``Store`` of the durable lane: the ``SqliteSpool``, or memory while the disk refuses writes."""

    encodes = True

    def __init__(self, spool: SqliteSpool, logger: logging.Logger, held_per_destination: int,
                 log_interval: float, retry_interval: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self._spool, self._log, self._clock = spool, logger, clock
        self._bound, self._log_interval, self._retry_interval = held_per_destination, log_interval, retry_interval
        self._lock = threading.Lock()
        self._held: dict[str, deque[Record]] = {}  # not yet read, oldest first
        self._out: dict[str, dict[int, Record]] = {}  # read (in flight), until acknowledged
        self._next_id = -1
        self._dead: MemoryLetters[Record] = MemoryLetters()  # refused while the disk refused writes too
        self._outage: _Outage | None = None
        self._announced_at: float | None = None  # monotonic

    # -- what the manager shows -----------------------------------------------------------------
    @property
    def path(self) -> object:
        return self._spool.path

    @property
    def quarantined_files(self) -> int:
        return self._spool.quarantined_files

    @property
    def salvaged_records(self) -> int:
        return self._spool.salvaged_records

    def health(self) -> SpoolHealth:
        outage = self._outage
        held = sum(len(q) for q in list(self._held.values())) + sum(len(o) for o in list(self._out.values()))
        if outage is None:
            return SpoolHealth("ok", held_in_memory=held)
        return SpoolHealth("failing", outage.since, outage.reason, held, outage.dropped)

    # -- writes -------------------------------------------------------------------------------------
    def load(self) -> dict[str, KeyStats]:
        return self._spool.load()

    def remember(self, key: str, team: str | None, name: str) -> None:
        try:
            self._spool.remember(key, team, name)
        except _DISK_ERRORS as exc:  # only the labels of a restart's left-overs: not worth a span
            with self._lock:
                self._failed(exc)

    def measure(self, item: bytes) -> int:
        return len(item)

    def commit(self, rows: Rows, excess: dict[str, int],
               spans: dict[str, list[ReadableSpan]] | None = None) -> dict[str, tuple[int, int]]:
        with self._lock:
            if self._outage is None:
                try:
                    return self._spool.commit(rows, excess, spans)
                except _DISK_ERRORS as exc:
                    self._failed(exc)
            elif self._clock() >= self._outage.retry_at:
                dropped = self._retry(rows, excess, spans)
                if dropped is not None:
                    return dropped
            return self._hold(rows, excess, spans)

    def flush_acks(self) -> None:
        """The writer's idle pass: delete what was acknowledged, and retry the disk when it is due."""
        with self._lock:
            if self._outage is not None:
                # Only a write of real rows tells the disk takes them again; with none held, the
                # next commit is the test.
                if self._held and self._clock() >= self._outage.retry_at:
                    self._retry({}, {}, {})
                return
            try:
                self._spool.flush_acks()
            except _DISK_ERRORS as exc:
                self._failed(exc)

    def _retry(self, rows: Rows, excess: dict[str, int],
               spans: dict[str, list[ReadableSpan]] | None) -> dict[str, tuple[int, int]] | None:
        """One attempt to spool the held rows and then ``rows``; None while the disk still refuses."""
        held = self._held.items()
        merged: Rows = {key: [(r.at, r.data or b"") for r in queue] for key, queue in held}
        copies: dict[str, list[ReadableSpan | None]] = {key: [r.span for r in queue] for key, queue in held}
        for key, items in rows.items():
            merged.setdefault(key, []).extend(items)
            copies.setdefault(key, []).extend(spans[key] if spans and key in spans else [None] * len(items))
        # The spool pairs rows with spans one for one, or keeps no copies (the sender then decodes).
        complete = all(span is not None for listed in copies.values() for span in listed)
        try:
            dropped = self._spool.commit(merged, excess, copies if complete else None)  # type: ignore[arg-type]
        except _DISK_ERRORS as exc:
            self._failed(exc)
            return None
        self._recovered(sum(len(q) for q in self._held.values()))
        self._held.clear()
        return dropped

    def _hold(self, rows: Rows, excess: dict[str, int],
              spans: dict[str, list[ReadableSpan]] | None) -> dict[str, tuple[int, int]]:
        dropped = {}
        for key, items in rows.items():
            queue = self._held.setdefault(key, deque())
            copies = spans.get(key) if spans else None
            for i, (at, data) in enumerate(items):
                queue.append(Record(self._next_id, at, len(data), data=data, span=copies[i] if copies else None))
                self._next_id -= 1
            count, freed = self._drop_held(queue, excess.get(key, 0))
            if count:
                dropped[key] = (count, freed)
        if self._outage is not None:
            self._outage.held_total += sum(len(items) for items in rows.values())
            self._outage.dropped += sum(count for count, _ in dropped.values())
        return dropped

    def _drop_held(self, queue: deque[Record], excess: int) -> tuple[int, int]:
        """Oldest first, down to the bound (and the lane's byte cap): never a record in flight."""
        count = freed = 0
        while queue and (len(queue) > self._bound or freed < excess):
            freed += queue.popleft().size
            count += 1
        return count, freed

    # -- reads and their outcome ----------------------------------------------------------------
    def read(self, key: str, limit: int) -> list[Record]:
        records = self._spool.read(key, limit)  # rows spooled before the outage are older: first
        if len(records) >= limit or key not in self._held:
            return records
        with self._lock:
            queue = self._held.get(key)
            out = self._out.setdefault(key, {})
            while queue and len(records) < limit:
                record = queue.popleft()
                out[record.id] = record
                records.append(record)
            if not queue:
                self._held.pop(key, None)
        return records

    def ack(self, key: str, records: list[Record]) -> None:
        spooled = self._forget_held(key, records)
        try:
            self._spool.ack(key, spooled)
        except _DISK_ERRORS as exc:  # the ids stay queued for deletion: sent again after a restart at worst
            with self._lock:
                self._failed(exc)

    def dead_letter(self, key: str, records: list[Record], status: int | None, detail: str, reason: str = "") -> None:
        spooled = self._forget_held(key, records)
        held = [r for r in records if r.id < 0]
        try:
            if spooled:
                self._spool.dead_letter(key, spooled, status, detail, reason)
        except _DISK_ERRORS as exc:  # the rows stay in the spool, past this process's cursor
            held += spooled
            with self._lock:
                self._failed(exc)
        self._dead.add(key, held, status, detail, reason, time.time())

    def quarantine(self, key: str, records: list[Record], reason: str) -> None:
        spooled = self._forget_held(key, records)
        try:
            if spooled:
                self._spool.quarantine(key, spooled, reason)
        except _DISK_ERRORS as exc:
            with self._lock:
                self._failed(exc)

    def dead_letters(self, key: str, limit: int = 100) -> list[DeadLetter]:
        letters = self._spool.dead_letters(key, limit) + self._dead.listing(key, limit)
        return sorted(letters, key=lambda d: d.at)[-limit:]

    def dead_letter_count(self, key: str) -> int:
        return self._spool.dead_letter_count(key) + self._dead.count(key)

    def replay(self, key: str, pick: Selection) -> Moved:
        """The spool's letters back to its queue; those held in memory back to the held queue."""
        try:
            count, size, at = self._spool.replay(key, pick)
        except _DISK_ERRORS as exc:  # nothing moved (the transaction rolled back): they stay dead letters
            with self._lock:
                self._failed(exc)
            count, size, at = 0, 0, None
        records = self._dead.take(key, pick)
        if records:
            now = time.time()
            with self._lock:
                queue = self._held.setdefault(key, deque())
                for r in records:
                    queue.append(Record(self._next_id, now, r.size, data=r.data, span=r.span))
                    self._next_id -= 1
            count, size, at = count + len(records), size + sum(r.size for r in records), now
        return count, size, at

    def sweep_dead_letters(self, cutoff: float, per_destination: int) -> dict[str, dict[str, int]]:
        dropped = self._spool.sweep_dead_letters(cutoff, per_destination)
        for key, reasons in self._dead.sweep(cutoff, per_destination).items():
            mine = dropped.setdefault(key, {})
            for reason, n in reasons.items():
                mine[reason] = mine.get(reason, 0) + n
        return dropped

    def _forget_held(self, key: str, records: list[Record]) -> list[Record]:
        """Drop the held ones among ``records`` from memory; returns the spooled ones."""
        if not self._out:  # the usual case: nothing held anywhere
            return records
        with self._lock:
            out = self._out.get(key, {})
            for record in records:
                if record.id < 0:
                    out.pop(record.id, None)
            if not out:
                self._out.pop(key, None)
        return [r for r in records if r.id > 0]

    def close(self) -> None:
        with self._lock:
            if self._held:
                self._retry({}, {}, {})  # a last chance to keep them
            lost = sum(len(q) for q in self._held.values()) + sum(len(o) for o in self._out.values())
        if lost:
            self._log.warning("spool: %d spans held in memory (the disk refused them) discarded at shutdown", lost)
        self._spool.close()

    # -- the outage's log lines (called under the lock) -----------------------------------------
    def _failed(self, exc: BaseException) -> None:
        now = self._clock()
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:_REASON_CHARS]
        outage = self._outage
        if outage is None:
            announce = self._announced_at is None or now - self._announced_at >= self._log_interval
            self._outage = _Outage(time.time(), now, reason, now + self._retry_interval, now, announce)
            if announce:
                self._announced_at = now
                self._log.warning("spool %s: writes failing (%s): holding spans in memory, at most %d per "
                                  "destination, and trying the disk again every %gs", self._spool.path, reason,
                                  self._bound, self._retry_interval)
            return
        outage.reason, outage.retry_at = reason, now + self._retry_interval
        if now - outage.logged_at >= self._log_interval:
            outage.logged_at = now
            self._log.warning("spool: still failing after %.0fs (%s): %d spans held in memory so far, %d dropped",
                              now - outage.started, reason, outage.held_total, outage.dropped)

    def _recovered(self, moved: int) -> None:
        outage = self._outage
        if outage is None:
            return
        self._outage = None
        if not outage.announced:
            return
        self._log.warning("spool: writes work again after %.0fs: %d held spans written to the spool, %d dropped "
                          "meanwhile", self._clock() - outage.started, moved, outage.dropped)
