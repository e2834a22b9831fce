"""Keeps an in-memory ``StoreSnapshot`` current by polling the store's version counter.

This is how several gateway instances on one PostgreSQL agree (a change made through one is
loaded by the others within ``interval`` plus one snapshot load), and how the request path looks
keys up without a database round trip. Polling costs one primary-key read per interval and needs
nothing beyond plain SQL, so it works the same on SQLite files shared by processes.

When the database is unreachable the last snapshot stays in force (keys keep working, deleted
ones stay deleted as of that snapshot) and the watcher keeps polling. An outage is logged once,
when it starts, and once more on recovery with its length: a line per poll would bury the log
(two a second by default), and readiness already reports the outage while it lasts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from app.store.records import StoreSnapshot, StoreUnavailable

logger = logging.getLogger(__name__)


class SnapshotSource(Protocol):
    async def version(self) -> int: ...

    async def snapshot(self) -> StoreSnapshot: ...


class StoreWatcher:
    def __init__(
        self,
        store: SnapshotSource,
        on_change: Callable[[StoreSnapshot], None],
        interval: float = 0.5,
        *,
        version_timeout: float = 5.0,
        snapshot_timeout: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._on_change = on_change
        self._interval = interval
        self._version_timeout = version_timeout
        self._snapshot_timeout = snapshot_timeout
        self._monotonic = monotonic
        self._snapshot: StoreSnapshot | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one poll at a time, so snapshots are delivered in order
        self._failures = 0
        self._outage_started: float | None = None

    @property
    def snapshot(self) -> StoreSnapshot | None:
        return self._snapshot

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    @property
    def unreachable_for(self) -> float | None:
        """Seconds since the first failed poll of the current outage; None while polls succeed."""
        return None if self._outage_started is None else self._monotonic() - self._outage_started

    async def start(self) -> StoreSnapshot:
        """Load and deliver the first snapshot (errors propagate: do not serve blind), then poll."""
        if self._task is not None:
            raise RuntimeError("StoreWatcher is already running")
        await self.refresh()
        assert self._snapshot is not None
        self._task = asyncio.create_task(self._run(), name="spangate-store-watcher")
        return self._snapshot

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def refresh(self) -> bool:
        """Poll now; True when a new snapshot was delivered. An instance that just wrote calls
        this so its own change applies at once rather than at the next tick."""
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that lands
        # as the inner call finishes, and stop() would then wait for this task forever.
        async with self._lock:
            async with _timeout(self._version_timeout, "version"):
                version = await self._store.version()
            if self._snapshot is not None and version == self._snapshot.version:
                return False
            async with _timeout(self._snapshot_timeout, "snapshot"):
                snapshot = await self._store.snapshot()
            self._deliver(snapshot)
            return True

    def _deliver(self, snapshot: StoreSnapshot) -> None:
        self._snapshot = snapshot
        try:
            self._on_change(snapshot)
        except Exception:
            # Counted as delivered all the same: retrying every tick would only repeat the failure.
            logger.exception("store watcher: on_change failed for version %d", snapshot.version)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh()
            except Exception as exc:
                self._poll_failed(exc)
            else:
                self._poll_succeeded()

    def _poll_failed(self, exc: Exception) -> None:
        self._failures += 1
        if self._outage_started is not None:
            return
        self._outage_started = self._monotonic()
        kept = self._snapshot.version if self._snapshot is not None else None
        logger.warning("store watcher: store unreachable (%s: %s); keeping snapshot version %s and retrying every "
                       "%gs; the recovery will be logged", type(exc).__name__, exc, kept, self._interval)

    def _poll_succeeded(self) -> None:
        if self._outage_started is not None:
            logger.warning("store watcher: store reachable again after %.1fs (%d failed poll(s))",
                           self._monotonic() - self._outage_started, self._failures)
        self._failures = 0
        self._outage_started = None


@contextlib.asynccontextmanager
async def _timeout(seconds: float, operation: str) -> AsyncIterator[None]:
    """A hung database is an unavailable one: callers (the admin API) handle one error type."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise StoreUnavailable(f"store {operation} timed out after {seconds:g}s") from None
