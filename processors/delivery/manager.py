"""The delivery layer's front door: destinations by key, the spool, the writer and the pool.

Thread model: the event loop only calls ``Destination.submit`` (append to a bounded deque).
One writer thread encodes and group-commits buffered spans to this process's spool (or, for
destinations opened with ``durable=False``, to the memory queue). A shared
pool of ``workers`` threads (plus bounded spares while exports stall) sends due batches, one
at a time per destination. A watchdog thread watches for stalled exports.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from opentelemetry.metrics import Meter
from opentelemetry.sdk.trace.export import SpanExporter

from .config import DeadLetter, DeliveryConfig, DestinationHealth, Selection, SpoolHealth
from .deadletter.sweep import Dropped, Sweeper
from .destination import Destination
from .fallback import FallbackSpool
from .lazy import LazySpanExporter
from .queues import Lane, MemoryStore
from .reporting import Telemetry
from .scheduler import Scheduler
from .sender import Sender, retire
from .spool import SqliteSpool, claim_slot, release_slot
from .writer import SpoolWriter

_FLUSH_POLL = 0.01


class DeliveryManager:
    def __init__(self, config: DeliveryConfig, meter: Meter | None = None, logger: logging.Logger | None = None):
        self._config = config
        self._log = logger or logging.getLogger("spangate.delivery")
        self._lock = threading.Lock()
        self._dests: dict[str, Destination] = {}
        self._telemetry = Telemetry(meter, self._log, lambda: list(self._dests.values()), config.drop_log_interval)
        self._spool: FallbackSpool | None = None
        self._lanes: dict[bool, Lane] = {}  # durable? -> lane; both memory when the manager is not durable
        self._writer: SpoolWriter | None = None
        self._scheduler: Scheduler | None = None
        self._slot_fd: int | None = None
        self.slot: int | None = None
        self._stopped = False
        self.sweeper = Sweeper(self._sweep, self._report_swept, config.dead_letter_retention, self._log)

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Claim a spool slot, take over what it holds, start the writer and the pool."""
        self._lanes = self._open_lanes()
        sender = Sender(self._config, self._log, random.Random())
        self._scheduler = Scheduler(self._config, sender.run, self._log)
        self._writer = SpoolWriter(
            self._telemetry, self._log, self._scheduler.notify_work, self._config.commit_interval,
            after_drain=None if self._spool is None else self._spool.flush_acks,
        )
        for key, stats in (self._spool.load() if self._spool is not None else {}).items():
            dest = self._destination(key, stats.team, stats.name)
            dest.lane = self._lanes[True]  # its left-overs are in the spool: it drains from there
            dest.stored(stats.count, stats.size, stats.oldest_at)
        for dest in list(self._dests.values()):
            if dest.exporter is not None:  # opened before start()
                self._assign_lane(dest, dest.wants_spool)
        self._writer.start()
        self._scheduler.start()
        self.sweeper.start()
        for dest in list(self._dests.values()):
            self._scheduler.notify_work(dest)
            if dest.buffer:  # submitted before start()
                self._writer.notify(dest)

    def _open_lanes(self) -> dict[bool, Lane]:
        memory = Lane(MemoryStore(), self._config.memory_queue_size)
        if not self._config.durable:
            return {True: memory, False: memory}
        self.slot, self._slot_fd = claim_slot(self._config.spool_dir, self._config.max_spool_slots)
        path = self._config.spool_dir / f"spool-{self.slot}.db"
        self._spool = FallbackSpool(SqliteSpool(path, self._log, self._config.cached_spans), self._log,
                                    held_per_destination=self._config.memory_queue_size,
                                    log_interval=self._config.failing_log_interval,
                                    retry_interval=self._config.spool_retry_interval)
        return {True: Lane(self._spool, self._config.max_spool_bytes), False: memory}

    def _assign_lane(self, dest: Destination, durable: bool) -> None:
        """A destination keeps its first lane for the life of the process, so no span is stranded
        in the other one (a destination with spool left-overs drains them from the spool)."""
        if dest.lane is None:
            dest.lane = self._lanes[durable]
        dest.lane.store.remember(dest.key, dest.team, dest.name)

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting, flush for up to ``timeout`` seconds, leave the rest in the spool."""
        if self._stopped:
            return
        self._stopped = True
        timeout = self._config.shutdown_flush_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        for dest in list(self._dests.values()):
            dest.closed = True
        if self._writer is None or self._scheduler is None or not self._lanes:
            return
        self.sweeper.stop()
        self._announce_flush(timeout)
        if not self.force_flush(timeout):
            left = self._undelivered()
            later = "; the spooled ones are sent at the next start" if self._spool is not None else ""
            self._log.warning("shutdown: %d spans not delivered within %.0fs (%s)%s", sum(left.values()), timeout,
                              ", ".join(left), later)
        self._scheduler.stop(max(0.0, deadline - time.monotonic()))
        self._writer.stop(max(0.1, deadline - time.monotonic()))
        for dest in list(self._dests.values()):
            old = dest.swap_exporter(None)
            if old is not None:
                retire(old, self._log)
        self._close_store()

    def _announce_flush(self, timeout: float) -> None:
        """The wait below can take ``timeout`` seconds: say so, rather than hang in silence."""
        waiting = self._undelivered()
        if waiting:
            self._log.warning("shutdown: waiting up to %.0fs to deliver %d queued spans to %s", timeout,
                              sum(waiting.values()), ", ".join(waiting))

    def _undelivered(self) -> dict[str, int]:
        return {d.key: n for d in list(self._dests.values()) if d.exporter is not None and (n := d.queued())}

    def _close_store(self) -> None:
        memory = self._lanes[False]
        lost = sum(d.queued() for d in self._dests.values() if d.lane is memory)
        if lost:
            self._log.warning("memory-only delivery: %d unsent spans discarded at shutdown", lost)
        memory.store.close()
        if self._spool is not None:
            self._spool.close()
        if self._slot_fd is not None:
            release_slot(self._slot_fd)
            self._slot_fd = None

    def force_flush(self, timeout: float) -> bool:
        """Send everything queued now; ``False`` if something is still queued at the deadline."""
        if self._writer is None or self._scheduler is None:
            return False
        deadline = time.monotonic() + timeout
        self._writer.sync(timeout)
        self._scheduler.expedite_all = True
        try:
            self._scheduler.expedite()
            while not self._drained():
                if time.monotonic() >= deadline:
                    return False
                time.sleep(_FLUSH_POLL)
            return True
        finally:
            self._scheduler.expedite_all = False

    def _drained(self) -> bool:
        return all(d.queued() == 0 for d in list(self._dests.values()) if d.exporter is not None)

    # -- destinations --------------------------------------------------------------------------
    def open(
        self,
        key: str,
        *,
        team: str | None,
        name: str,
        factory: Callable[[], SpanExporter],
        durable: bool | None = None,
    ) -> Destination:
        """Attach an exporter to ``key`` (replacing any previous one); its spooled spans are kept.

        ``durable=False`` queues this destination's spans in memory even when the manager spools
        (for destinations that are their own durable log, like a local file); ``None`` or ``True``
        follow the manager, which has no spool to offer when it was configured memory-only.
        The exporter is built on first use, on a delivery thread (``LazySpanExporter``).
        """
        exporter = LazySpanExporter(factory, key, self._log)
        dest = self._destination(key, team, name)
        dest.team, dest.name = team, name
        dest.wants_spool = durable is not False
        if self._lanes:
            self._assign_lane(dest, dest.wants_spool)  # before the exporter: no span without a lane
        old = dest.swap_exporter(exporter)
        if old is not None:
            threading.Thread(target=retire, args=(old, self._log), daemon=True).start()
        if self._scheduler is not None:
            self._scheduler.notify_work(dest)
        return dest

    def close(self, key: str) -> None:
        """Stop accepting for ``key``; its spool stays (shown as orphaned) until it is opened again."""
        dest = self._dests.get(key)
        if dest is None:
            return
        old = dest.swap_exporter(None)
        if old is not None:
            retire(old, self._log)

    def _destination(self, key: str, team: str | None, name: str) -> Destination:
        with self._lock:
            dest = self._dests.get(key)
            if dest is None:
                dest = Destination(
                    key,
                    team,
                    name,
                    buffer_size=self._config.memory_queue_size,
                    telemetry=self._telemetry,
                    on_dirty=self._on_dirty,
                )
                self._dests[key] = dest
            return dest

    def _on_dirty(self, dest: Destination) -> None:
        if self._writer is not None:
            self._writer.notify(dest)

    # -- visibility ----------------------------------------------------------------------------
    def health(self) -> list[DestinationHealth]:
        now = time.time()
        return [d.health(now) for _, d in sorted(self._dests.items())]

    def dead_letters(self, key: str, limit: int = 100) -> list[DeadLetter]:
        lane = self._lane_of(key)
        return lane.store.dead_letters(key, limit) if lane is not None else []

    def dead_letter_count(self, key: str) -> int:
        """Dead letters held for ``key`` now (the health counter ``dead_lettered`` counts since start)."""
        lane = self._lane_of(key)
        return lane.store.dead_letter_count(key) if lane is not None else 0

    def replay(self, key: str, pick: Selection | None = None) -> int:
        """Put ``key``'s chosen dead letters back on its queue, sent with its current exporter; how many."""
        dest = self._dests.get(key)
        lane = self._lane_of(key)
        if dest is None or lane is None:
            return 0
        count, size, at = lane.store.replay(key, pick or Selection())
        if count:
            dest.stored(count, size, at)
            if self._scheduler is not None:
                self._scheduler.notify_work(dest)
        return count

    def _lane_of(self, key: str) -> Lane | None:
        dest = self._dests.get(key)
        return dest.lane if dest is not None and dest.lane is not None else self._lanes.get(True)

    def _sweep(self, cutoff: float) -> Dropped:
        dropped: Dropped = {}
        bound = self._config.dead_letters_per_destination
        for lane in {id(lane): lane for lane in self._lanes.values()}.values():  # both may be one memory lane
            for key, reasons in lane.store.sweep_dead_letters(cutoff, bound).items():
                dropped.setdefault(key, {}).update(reasons)
        return dropped

    def _report_swept(self, dropped: Dropped) -> None:
        for key, reasons in dropped.items():
            dest = self._dests.get(key)
            for reason, n in reasons.items():
                self._telemetry.dead_letters_dropped(key, dest.team if dest is not None else None, reason, n)

    def spool_health(self) -> SpoolHealth:
        """Whether the disk takes the durable lane's writes (readiness and /health/destinations)."""
        return self._spool.health() if self._spool is not None else SpoolHealth("off")

    def spool_status(self) -> dict[str, object]:
        """Which slot this process owns and what start-up had to quarantine."""
        store = self._spool
        return {
            "slot": self.slot,
            "path": str(getattr(store, "path", "")) or None,
            "quarantined_files": getattr(store, "quarantined_files", 0),
            "salvaged_records": getattr(store, "salvaged_records", 0),
        }
