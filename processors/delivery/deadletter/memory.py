"""Dead letters of a memory-only lane (and of spans the disk refused), kept with their records.

Bounded as the spool's are: ``sweep`` drops by age and count. Until a sweep runs, at most ``hard_cap``
are held in all (an outage refusing spans faster than the sweep runs must not grow memory without
end); what that cap pushes out is counted as ``over_limit`` and reported at the next sweep.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar

from opentelemetry.sdk.trace import ReadableSpan

from contracts import semconv as sc

from ..config import EXPIRED, OVER_LIMIT, DeadLetter, Selection


class _Held(Protocol):
    """A queue record (``queues.Record``; declared, not imported: queues.py builds on this module)."""

    span: ReadableSpan | None


Record = TypeVar("Record", bound=_Held)

HARD_CAP = 10_000


class MemoryLetters(Generic[Record]):
    def __init__(self, hard_cap: int = HARD_CAP) -> None:
        self._items: deque[tuple[DeadLetter, Record]] = deque()
        self._cap = hard_cap
        self._pushed_out: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, key: str, records: Iterable[Record], status: int | None, detail: str, reason: str,
            now: float) -> None:
        with self._lock:
            for record in records:
                self._items.append((_letter(key, record, status, detail, reason, now), record))
            while len(self._items) > self._cap:
                old_key = self._items.popleft()[0].key
                self._pushed_out[old_key] = self._pushed_out.get(old_key, 0) + 1

    def listing(self, key: str, limit: int) -> list[DeadLetter]:
        with self._lock:
            return [letter for letter, _ in self._items if letter.key == key][-limit:]

    def count(self, key: str) -> int:
        with self._lock:
            return sum(letter.key == key for letter, _ in self._items)

    def take(self, key: str, pick: Selection) -> list[Record]:
        """Remove and return the chosen letters' records, oldest first."""
        with self._lock:
            taken = [(d, r) for d, r in self._items if d.key == key and pick.takes(d.span_id, d.ended_at)]
            chosen = {id(r) for _, r in taken}
            self._items = deque(item for item in self._items if id(item[1]) not in chosen)
        return [r for _, r in taken]

    def sweep(self, cutoff: float, per_destination: int) -> dict[str, dict[str, int]]:
        with self._lock:
            dropped = {key: {OVER_LIMIT: n} for key, n in self._pushed_out.items()}
            self._pushed_out = {}
            kept: deque[tuple[DeadLetter, Record]] = deque()
            for item in self._items:
                if item[0].at < cutoff:
                    _add(dropped, item[0].key, EXPIRED)
                else:
                    kept.append(item)
            self._items = _bounded(kept, per_destination, dropped)
        return dropped


def _bounded(items: deque[tuple[DeadLetter, Record]], per_destination: int,
             dropped: dict[str, dict[str, int]]) -> deque[tuple[DeadLetter, Record]]:
    counts: dict[str, int] = {}
    for letter, _ in items:
        counts[letter.key] = counts.get(letter.key, 0) + 1
    excess = {key: n - per_destination for key, n in counts.items() if n > per_destination}
    kept: deque[tuple[DeadLetter, Record]] = deque()
    for item in items:  # oldest first: the first ``excess`` of a key go
        key = item[0].key
        if excess.get(key, 0) > 0:
            excess[key] -= 1
            _add(dropped, key, OVER_LIMIT)
        else:
            kept.append(item)
    return kept


def _add(dropped: dict[str, dict[str, int]], key: str, reason: str) -> None:
    reasons = dropped.setdefault(key, {})
    reasons[reason] = reasons.get(reason, 0) + 1


def _letter(key: str, record: Record, status: int | None, detail: str, reason: str, now: float) -> DeadLetter:
    span = record.span
    ctx = span.context if span is not None else None
    if span is None or ctx is None:
        return DeadLetter(key, 0, status, detail, now, reason=reason)
    attrs = span.attributes or {}
    model = attrs.get(sc.RESPONSE_MODEL) or attrs.get(sc.REQUEST_MODEL)
    ended = span.end_time / 1e9 if span.end_time else None
    return DeadLetter(key, ctx.span_id, status, detail, now, ctx.trace_id, model if isinstance(model, str) else None,
                      ended, reason)
