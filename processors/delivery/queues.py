"""What a queue of spans looks like to the writer and the workers, plus the memory-only queue.

A store keeps, per destination key, an ordered queue of records and a read cursor: ``read``
hands out records after the cursor (the batch in flight) and moves it; ``drop_oldest`` only
removes records after the cursor, so a span is never both dropped and delivered.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from itertools import islice
from typing import Protocol

from opentelemetry.sdk.trace import ReadableSpan

from .config import DeadLetter, Selection
from .deadletter.memory import MemoryLetters

Moved = tuple[int, int, float | None]  # (spans put back on the queue, their size, their queue time)


@dataclass(slots=True)
class Record:
    id: int
    at: float  # unix time the span was submitted
    size: int  # what it counts against the cap
    data: bytes | None = None  # encoded form (spool)
    span: ReadableSpan | None = None  # decoded form (memory, or after decoding)


@dataclass(frozen=True, slots=True)
class KeyStats:
    count: int
    size: int
    oldest_at: float | None
    team: str | None = None
    name: str = ""


class Store(Protocol):
    def load(self) -> dict[str, KeyStats]: ...
    def remember(self, key: str, team: str | None, name: str) -> None: ...
    def measure(self, item: bytes | ReadableSpan) -> int: ...
    def commit(
        self,
        rows: dict[str, list[tuple[float, object]]],
        excess: dict[str, int],
        spans: dict[str, list[ReadableSpan]] | None = None,
    ) -> dict[str, tuple[int, int]]: ...
    def read(self, key: str, limit: int) -> list[Record]: ...
    def ack(self, key: str, records: list[Record]) -> None: ...
    def dead_letter(self, key: str, records: list[Record], status: int | None, detail: str,
                    reason: str = "") -> None: ...
    def quarantine(self, key: str, records: list[Record], reason: str) -> None: ...
    def dead_letters(self, key: str, limit: int = 100) -> list[DeadLetter]: ...
    def dead_letter_count(self, key: str) -> int: ...
    def replay(self, key: str, pick: Selection) -> Moved: ...
    def sweep_dead_letters(self, cutoff: float, per_destination: int) -> dict[str, dict[str, int]]: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True, eq=False)
class Lane:
    """Where one destination's spans wait: a store and the per-destination cap it enforces."""

    store: Store
    cap: int  # encoded bytes for the spool, spans for memory

    @property
    def encodes(self) -> bool:
        return getattr(self.store, "encodes", True)


class MemoryStore:
    """Memory-only queues: sizes are span counts, so the cap is a number of spans."""

    encodes = False

    def __init__(self) -> None:
        self._queues: dict[str, deque[Record]] = {}
        self._cursor: dict[str, int] = {}
        self._dead: MemoryLetters[Record] = MemoryLetters()
        self._next_id = 1
        self._lock = threading.Lock()

    def load(self) -> dict[str, KeyStats]:
        return {}

    def remember(self, key: str, team: str | None, name: str) -> None:
        pass

    def measure(self, item: bytes | ReadableSpan) -> int:
        return 1

    def commit(
        self,
        rows: dict[str, list[tuple[float, object]]],
        excess: dict[str, int],
        spans: dict[str, list[ReadableSpan]] | None = None,  # the rows are the spans already
    ) -> dict[str, tuple[int, int]]:
        with self._lock:
            for key, items in rows.items():
                queue = self._queues.setdefault(key, deque())
                for at, span in items:
                    queue.append(Record(self._next_id, at, 1, span=span))  # type: ignore[arg-type]
                    self._next_id += 1
            return {key: self._drop(key, amount) for key, amount in excess.items() if amount > 0}

    def _drop(self, key: str, amount: int) -> tuple[int, int]:
        queue, cursor = self._queues.get(key, deque()), self._cursor.get(key, 0)
        keep = [r for r in queue if r.id <= cursor]  # in flight: at the head, never dropped
        rest = [r for r in queue if r.id > cursor]
        dropped = rest[:amount]
        self._queues[key] = deque(keep + rest[amount:])
        return len(dropped), len(dropped)

    def read(self, key: str, limit: int) -> list[Record]:
        with self._lock:
            cursor = self._cursor.get(key, 0)
            batch = list(islice((r for r in self._queues.get(key, ()) if r.id > cursor), limit))
            if batch:
                self._cursor[key] = batch[-1].id
            return batch

    def ack(self, key: str, records: list[Record]) -> None:
        ids = {r.id for r in records}
        with self._lock:
            queue = self._queues.get(key, deque())
            while queue and queue[0].id in ids:  # acks come in queue order: usually a prefix
                ids.discard(queue.popleft().id)
            if ids:
                self._queues[key] = deque(r for r in queue if r.id not in ids)

    def dead_letter(self, key: str, records: list[Record], status: int | None, detail: str, reason: str = "") -> None:
        self._dead.add(key, records, status, detail, reason, time.time())
        self.ack(key, records)

    def quarantine(self, key: str, records: list[Record], reason: str) -> None:
        self.ack(key, records)

    def dead_letters(self, key: str, limit: int = 100) -> list[DeadLetter]:
        return self._dead.listing(key, limit)

    def dead_letter_count(self, key: str) -> int:
        return self._dead.count(key)

    def replay(self, key: str, pick: Selection) -> Moved:
        """The chosen letters go to the end of the queue as new records (the same spans)."""
        records = self._dead.take(key, pick)
        now = time.time()
        with self._lock:
            queue = self._queues.setdefault(key, deque())
            for record in records:
                queue.append(Record(self._next_id, now, 1, span=record.span))
                self._next_id += 1
        return len(records), len(records), now if records else None

    def sweep_dead_letters(self, cutoff: float, per_destination: int) -> dict[str, dict[str, int]]:
        return self._dead.sweep(cutoff, per_destination)

    def close(self) -> None:
        pass
