"""The writer thread: moves submitted spans from the destinations' buffers into their stores.

One thread group-commits everything buffered since its last pass in one transaction per store
(the spool, the memory queue), so the cost of a commit is shared by every span and destination
in it. Caps are enforced in the same transaction (drop-oldest after the batch in flight), and
drop lines are logged from here.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from opentelemetry.sdk.trace import ReadableSpan

from .codec import encode_span
from .config import DROP_ERROR, DROP_SPOOL_ERROR, DROP_SPOOL_FULL
from .destination import Destination
from .queues import Lane
from .reporting import Telemetry

_IDLE_WAKE = 0.25  # seconds; also the pace of the drop log


@dataclass(slots=True)
class _Taken:
    """What one drain took from one destination's buffer."""

    dest: Destination
    rows: list[tuple[float, object]] = field(default_factory=list)  # (submitted at, bytes or span)
    spans: list[ReadableSpan] = field(default_factory=list)  # the same spans, in the same order
    size: int = 0
    moving: int = 0  # counted in ``dest.moving`` until the store holds them (or they are dropped)


class SpoolWriter:
    def __init__(
        self,
        telemetry: Telemetry,
        logger: logging.Logger,
        on_stored: Callable[[Destination], None],
        commit_interval: float = 0.0,
        after_drain: Callable[[], None] | None = None,
    ) -> None:
        self._telemetry, self._log = telemetry, logger
        self._on_stored = on_stored
        self._after_drain = after_drain  # the spool's deferred acknowledgements, when nothing was committed
        self._commit_interval = commit_interval
        self._dirty: deque[Destination] = deque()
        self._wake = threading.Event()
        self._hurry = threading.Event()  # cuts the commit interval short: sync() and stop()
        self._cycles = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="spangate-spool-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self, dest: Destination) -> None:
        """Called from ``submit``: O(1), no lock beyond the Event's own."""
        self._dirty.append(dest)
        if not self._wake.is_set():
            self._wake.set()

    def sync(self, timeout: float) -> bool:
        """Wait until everything submitted before this call is in the store."""
        with self._cond:
            target = self._cycles + 2  # the pass in progress may have started before the call
            self._wake.set()
            self._hurry.set()
            return self._cond.wait_for(lambda: self._cycles >= target or self._stopping, timeout)

    def stop(self, timeout: float) -> None:
        self._stopping = True
        self._wake.set()
        self._hurry.set()
        self._thread.join(timeout)
        self.drain()  # whatever arrived meanwhile still goes to the spool

    def _run(self) -> None:
        while not self._stopping:
            if self._wake.wait(_IDLE_WAKE) and self._commit_interval > 0:
                # Gather what arrives in the next few milliseconds into the same transaction: one
                # wake-up and one commit per interval instead of one per request under load.
                self._hurry.wait(self._commit_interval)
            self._wake.clear()
            self._hurry.clear()
            self.drain()
            if self._after_drain is not None:
                try:
                    self._after_drain()
                except Exception:  # the rows stay; acknowledged again at the next pass or at close
                    self._log.exception("spool: deleting acknowledged spans failed")
            self._telemetry.log_drops()
            with self._cond:
                self._cycles += 1
                self._cond.notify_all()

    def drain(self) -> None:
        dests: dict[int, Destination] = {}
        while self._dirty:
            dest = self._dirty.popleft()
            dests[id(dest)] = dest
        if dests:
            # A span routed to several destinations (the gateway span goes to file and otel) is
            # encoded once per drain. Keyed by id(): the dict holds the span too, so no other
            # span can be allocated at that address while the drain runs.
            encoded: dict[int, tuple[ReadableSpan, bytes | None]] = {}
            by_lane: dict[int, tuple[Lane, list[_Taken]]] = {}
            for dest in dests.values():
                lane = dest.lane
                if lane is not None:
                    by_lane.setdefault(id(lane), (lane, []))[1].append(self._take(dest, lane, encoded))
            for lane, taken in by_lane.values():
                self._commit(lane, taken)

    def _take(self, dest: Destination, lane: Lane, encoded: dict[int, tuple[ReadableSpan, bytes | None]]) -> _Taken:
        dest.dirty = False  # before draining, so a concurrent submit re-registers the destination
        taken = _Taken(dest)
        encodes, measure = lane.encodes, lane.store.measure
        count = len(dest.buffer)  # later submits stay for the next drain
        dest.moving += count  # before the pops: ``queued()`` never dips to 0 while spans move
        taken.moving = count
        for _ in range(count):
            at, span = dest.buffer.popleft()
            item = self._encoded(span, encoded) if encodes else span
            if item is None:  # a span we cannot encode is counted, not fatal
                dest.count_drop(DROP_ERROR)
                continue
            taken.rows.append((at, item))
            taken.spans.append(span)
            taken.size += measure(item)  # type: ignore[arg-type]
        return taken

    def _encoded(self, span: ReadableSpan, encoded: dict[int, tuple[ReadableSpan, bytes | None]]) -> bytes | None:
        hit = encoded.get(id(span))
        if hit is not None:
            return hit[1]
        try:
            data: bytes | None = encode_span(span)
        except Exception:
            data = None
        encoded[id(span)] = (span, data)
        return data

    def _commit(self, lane: Lane, taken: list[_Taken]) -> None:
        try:
            self._store(lane, [t for t in taken if t.rows])
        finally:
            for t in taken:
                t.dest.moving -= t.moving

    def _store(self, lane: Lane, taken: list[_Taken]) -> None:
        if not taken:
            return
        rows = {t.dest.key: t.rows for t in taken}
        excess = {t.dest.key: t.dest.stored_size + t.size - lane.cap for t in taken}
        try:
            if lane.encodes:  # the spool keeps the spans beside their rows, so sending skips decoding
                dropped = lane.store.commit(rows, excess, {t.dest.key: t.spans for t in taken})
            else:
                dropped = lane.store.commit(rows, excess)
        except Exception:
            self._log.exception("spool write failed; %d spans lost", sum(len(r) for r in rows.values()))
            for t in taken:
                t.dest.count_drop(DROP_SPOOL_ERROR, len(t.rows))
            return
        for t in taken:
            self._account(t.dest, len(t.rows), t.size, t.rows[0][0], dropped.get(t.dest.key))

    def _account(self, dest: Destination, n: int, size: int, oldest: float, drop: tuple[int, int] | None) -> None:
        dest.stored(n, size, oldest)
        with dest.lock:
            dest.spooled += n
        if drop and drop[0]:
            dest.stored(-drop[0], -drop[1])
            dest.count_drop(DROP_SPOOL_FULL, drop[0])
        self._on_stored(dest)
