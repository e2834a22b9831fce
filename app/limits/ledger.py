"""The spend ledger: every call's spend row journaled on disk at once, then recorded in the store.

``record(row)`` writes one JSON line with a single ``os.write`` on an ``O_APPEND`` descriptor of this
process's journal: once it returns, the line is in the kernel's page cache and survives a ``kill -9`` of
the process (not a power cut: no fsync per call, it would cost a disk round trip per call). A
background task sends the new rows in batches to ``store.record_spend``, which records each request id
once; while the store is down it retries with backoff, the rows waiting in memory and in the journal.

Each process's journal files carry an exclusive ``flock``. At start and every ``replay_seconds`` the
ledger replays every journal file no live process holds (an instance or a worker that was killed), and
deletes it once recorded. A journal file is rotated at ``rotate_bytes``: new rows go to a new file, the
old one is deleted once all its rows are recorded. Replaying a row already recorded adds nothing (the
store is idempotent by request id), so a crash between the store's commit and the file's deletion only
costs a repeated, harmless send.

A new file is created under a temporary name, locked, then renamed: a replaying process never sees a
journal file before its owner holds the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import msgspec

from app.store import SpendRow

logger = logging.getLogger("spangate.limits.ledger")
SUFFIX = ".journal"
BATCH = 500
ROTATE_BYTES = 4 * 1024 * 1024
MAX_BACKOFF_SECONDS = 5.0
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(SpendRow)


class SpendSink(Protocol):
    """What the ledger needs of the store (``app.store.Store`` is one)."""

    async def record_spend(self, rows: Sequence[SpendRow]) -> int: ...

    async def period_spend(self, counters: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]: ...


@dataclass(eq=False)
class _Segment:
    """One journal file this process holds, and how many of its rows are not recorded yet."""

    path: Path
    fd: int
    size: int = 0
    unrecorded: int = 0
    closed: bool = False  # rotated: no new rows; deleted once unrecorded reaches 0


@dataclass
class _Outage:
    down: bool = False
    backoff: float = 0.0
    retry_at: float = 0.0
    errors: int = field(default=0)


def _open_locked(directory: Path) -> _Segment:
    name = f"{os.getpid()}-{secrets.token_hex(6)}"
    temporary = directory / f".{name}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    path = directory / f"{name}{SUFFIX}"
    os.rename(temporary, path)
    return _Segment(path, fd)


def _decode(data: bytes, path: Path) -> list[SpendRow]:
    rows = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            rows.append(_DECODER.decode(line))
        except msgspec.DecodeError:  # a line cut short by a full disk: the rest of the file is good
            logger.warning("spend journal %s: an unreadable line was skipped", path.name)
    return rows


class SpendLedger:
    def __init__(self, store: SpendSink, directory: Path, *, flush_seconds: float = 0.1,
                 replay_seconds: float = 30.0, rotate_bytes: int = ROTATE_BYTES) -> None:
        self.store = store
        self.directory = Path(directory)
        self.flush_seconds = flush_seconds
        self.replay_seconds = replay_seconds
        self.rotate_bytes = rotate_bytes
        self._segments: list[_Segment] = []
        self._pending: list[tuple[_Segment, SpendRow]] = []
        self._outage = _Outage()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()  # one sender: a batch is taken off the queue only once
        self.recorded = 0  # rows sent to the store and acknowledged (this process's and replayed)

    @property
    def pending(self) -> int:
        """Rows journaled by this process and not recorded in the store yet."""
        return len(self._pending)

    @property
    def store_healthy(self) -> bool:
        return not self._outage.down

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._segments.append(_open_locked(self.directory))
        await self.replay()
        self._task = asyncio.create_task(self._run(), name="spend-ledger")

    def record(self, row: SpendRow) -> None:
        """Journal the row (durable once this returns) and queue it for the store. Never raises."""
        if not self._segments or self._segments[-1].closed:
            logger.error("spend ledger not started: row %s not journaled", row.request_id)
            return
        segment = self._segments[-1]
        line = _ENCODER.encode(row) + b"\n"
        try:
            os.write(segment.fd, line)
        except OSError as exc:  # a full disk: the row still goes to the store, only the crash safety is lost
            logger.error("spend journal write failed (%s): row %s kept in memory only", exc, row.request_id)
        segment.size += len(line)
        segment.unrecorded += 1
        self._pending.append((segment, row))
        if segment.size >= self.rotate_bytes:
            self._rotate()
        if len(self._pending) >= BATCH:
            self._wake.set()

    def _rotate(self) -> None:
        try:
            fresh = _open_locked(self.directory)
        except OSError as exc:
            logger.error("spend journal rotation failed (%s); staying on %s", exc, self._segments[-1].path.name)
            return
        self._segments[-1].closed = True
        self._segments.append(fresh)
        self._drop_recorded()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_replay = loop.time() + self.replay_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_seconds)
            self._wake.clear()
            try:
                await self.flush()
                if loop.time() >= next_replay:
                    next_replay = loop.time() + self.replay_seconds
                    await self.replay()
            except Exception:  # a journal directory gone unreadable: logged, the loop goes on
                logger.exception("spend ledger pass failed")

    async def flush(self) -> bool:
        """Send what is pending, a batch at a time; False when the store failed (retried later)."""
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> bool:
        loop = asyncio.get_running_loop()
        if self._outage.down and loop.time() < self._outage.retry_at:
            return False
        while self._pending:
            batch = self._pending[:BATCH]
            if not await self._send([row for _, row in batch]):
                return False
            del self._pending[:len(batch)]
            for segment, _ in batch:
                segment.unrecorded -= 1
            self._drop_recorded()
        return True

    async def _send(self, rows: list[SpendRow]) -> bool:
        try:
            await self.store.record_spend(rows)
        except Exception as exc:  # any store failure is retried; the rows stay journaled
            self._store_failed(exc)
            return False
        self.recorded += len(rows)
        if self._outage.down:
            logger.info("spend store reachable again: recording the %d journaled rows", self.pending)
        self._outage = _Outage()
        return True

    def _store_failed(self, exc: Exception) -> None:
        outage = self._outage
        if not outage.down:
            logger.warning("spend store unreachable (%s): spend rows stay journaled in %s and are retried",
                           type(exc).__name__, self.directory)
        outage.down = True
        outage.errors += 1
        outage.backoff = min(MAX_BACKOFF_SECONDS, max(self.flush_seconds, outage.backoff * 2))
        outage.retry_at = asyncio.get_running_loop().time() + outage.backoff

    def _drop_recorded(self) -> None:
        for segment in [s for s in self._segments if s.closed and s.unrecorded == 0]:
            self._segments.remove(segment)
            with contextlib.suppress(FileNotFoundError):
                segment.path.unlink()
            os.close(segment.fd)

    async def replay(self) -> int:
        """Record every journal file no live process holds, deleting each once recorded; rows sent."""
        own = {segment.path for segment in self._segments}
        sent = 0
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            if path not in own:
                sent += await self._replay_file(path)
        return sent

    async def _replay_file(self, path: Path) -> int:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return 0  # another process replayed it first
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # its process is alive
            rows = _decode(_read_all(fd), path)
            for start in range(0, len(rows), BATCH):
                if not await self._send(rows[start:start + BATCH]):
                    return start  # kept: the next replay sends it again
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            if rows:
                logger.info("spend journal %s replayed: %d rows", path.name, len(rows))
            return len(rows)
        finally:
            os.close(fd)

    async def close(self, timeout: float = 5.0) -> None:
        """Stop the task, send what is pending (for ``timeout`` at most), and release the journal: what
        the store did not take stays in it, for the next start (or another instance) to replay."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(TimeoutError):
            self._outage.retry_at = 0.0
            await asyncio.wait_for(self.flush(), timeout)
        for segment in self._segments:
            segment.closed = True
        self._drop_recorded()
        for segment in self._segments:
            os.close(segment.fd)  # not recorded: the file stays, unlocked, for a replay
        self._segments.clear()


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)
