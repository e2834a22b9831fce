from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from types import MappingProxyType

import pytest

from app.store import Store, StoreSnapshot, StoreUnavailable, StoreWatcher

AGREE_WITHIN = 2.0  # the promise for gateway instances sharing one database


async def eventually(predicate: Callable[[], bool], timeout: float = AGREE_WITHIN) -> float:
    """Seconds until predicate() held; fails the test after timeout."""
    start = time.perf_counter()
    while not predicate():
        if time.perf_counter() - start > timeout:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(0.005)
    return time.perf_counter() - start


class Recorder:
    def __init__(self) -> None:
        self.snapshots: list[StoreSnapshot] = []

    def __call__(self, snapshot: StoreSnapshot) -> None:
        self.snapshots.append(snapshot)

    @property
    def last(self) -> StoreSnapshot:
        return self.snapshots[-1]


async def test_a_callback_set_on_one_instance_reaches_the_other_within_2s(store: Store, second_store: Store):
    await store.create_team("a", None, [], {})
    seen = Recorder()
    watcher = StoreWatcher(second_store, seen)
    first = await watcher.start()
    try:
        assert seen.snapshots == [first] and "a" in first.teams
        await store.set_callback("a", "langfuse", "success", "v1.x", ["langfuse_secret_key"], {})
        elapsed = await eventually(lambda: "a" in seen.last.callbacks)
        assert elapsed < AGREE_WITHIN
        assert watcher.snapshot is seen.last
        assert seen.last.version == await store.version()
    finally:
        await watcher.stop()


async def test_a_key_deleted_on_one_instance_disappears_from_the_other(store: Store, second_store: Store):
    await store.create_key("h1", "sk-abcd…", None, None, [], {}, None)
    await store.create_key("h2", "sk-efgh…", None, None, [], {}, None)
    seen = Recorder()
    watcher = StoreWatcher(second_store, seen, interval=0.1)
    await watcher.start()
    try:
        assert set(seen.last.keys) == {"h1", "h2"}
        await store.delete_keys(["h1"])
        await eventually(lambda: "h1" not in seen.last.keys)
        assert set(seen.last.keys) == {"h2"}
    finally:
        await watcher.stop()


async def test_no_change_means_no_reload(store: Store):
    seen = Recorder()
    watcher = StoreWatcher(store, seen, interval=0.01)
    await watcher.start()
    try:
        await asyncio.sleep(0.1)
        assert len(seen.snapshots) == 1
        await store.create_team("a", None, [], {})
        await eventually(lambda: len(seen.snapshots) == 2)
        await asyncio.sleep(0.1)
        assert len(seen.snapshots) == 2
    finally:
        await watcher.stop()


async def test_refresh_applies_an_own_write_at_once(store: Store):
    seen = Recorder()
    watcher = StoreWatcher(store, seen, interval=3600)
    await watcher.start()
    try:
        await store.create_team("a", None, [], {})
        assert await watcher.refresh() is True
        assert "a" in seen.last.teams
        assert await watcher.refresh() is False
        assert len(seen.snapshots) == 2
    finally:
        await watcher.stop()


async def test_start_twice_is_refused_and_stop_is_idempotent(store: Store):
    watcher = StoreWatcher(store, Recorder())
    await watcher.start()
    with pytest.raises(RuntimeError, match="already running"):
        await watcher.start()
    await watcher.stop()
    await watcher.stop()


# -- failures, with a scripted source ------------------------------------------------------------


def _snapshot(version: int) -> StoreSnapshot:
    empty = MappingProxyType({})
    return StoreSnapshot(version=version, teams=empty, keys=empty, callbacks=empty)


class ScriptedSource:
    def __init__(self) -> None:
        self.current = _snapshot(1)
        self.failing = False
        self.polls = 0

    async def version(self) -> int:
        self.polls += 1
        if self.failing:
            raise StoreUnavailable("store version failed: ConnectionRefusedError")
        return self.current.version

    async def snapshot(self) -> StoreSnapshot:
        if self.failing:
            raise StoreUnavailable("store snapshot failed: ConnectionRefusedError")
        return self.current


class ManualMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_start_fails_when_the_store_is_down():
    source = ScriptedSource()
    source.failing = True
    with pytest.raises(StoreUnavailable):
        await StoreWatcher(source, Recorder()).start()


async def test_an_outage_keeps_the_last_snapshot_and_is_logged_once_and_its_end_once(caplog):
    caplog.set_level(logging.INFO, logger="app.store.watch")
    source, seen, monotonic = ScriptedSource(), Recorder(), ManualMonotonic()
    watcher = StoreWatcher(source, seen, interval=0.001, monotonic=monotonic)
    await watcher.start()
    try:
        assert watcher.unreachable_for is None
        source.failing = True
        polls = source.polls
        await eventually(lambda: source.polls >= polls + 50)
        monotonic.now += 42
        await eventually(lambda: source.polls >= polls + 100)  # still retrying, still quiet
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1, lines
        assert "store unreachable (StoreUnavailable" in lines[0] and "keeping snapshot version 1" in lines[0]
        assert watcher.snapshot is seen.last and seen.last.version == 1
        assert watcher.consecutive_failures >= 100
        assert watcher.unreachable_for == 42

        source.failing = False
        source.current = _snapshot(2)
        await eventually(lambda: seen.last.version == 2)
        await eventually(lambda: len(caplog.records) == 2)
        recovered = caplog.records[1]
        assert recovered.levelno == logging.WARNING  # seen at the CLI's default level, as the outage was
        assert "reachable again after 42.0s" in recovered.getMessage()
        assert watcher.consecutive_failures == 0 and watcher.unreachable_for is None

        source.failing = True  # a second outage is a new event: logged again
        await eventually(lambda: len(caplog.records) == 3)
        assert "store unreachable" in caplog.records[2].getMessage()
    finally:
        await watcher.stop()


async def test_a_failing_on_change_does_not_stop_the_watcher(caplog):
    source = ScriptedSource()
    delivered: list[int] = []

    def on_change(snapshot: StoreSnapshot) -> None:
        delivered.append(snapshot.version)
        if snapshot.version == 2:
            raise RuntimeError("router rebuild failed")

    watcher = StoreWatcher(source, on_change, interval=0.001)
    await watcher.start()
    try:
        source.current = _snapshot(2)
        await eventually(lambda: delivered == [1, 2])
        source.current = _snapshot(3)
        await eventually(lambda: delivered == [1, 2, 3])
        assert any("on_change failed for version 2" in r.getMessage() for r in caplog.records)
    finally:
        await watcher.stop()


async def test_a_hung_poll_times_out_and_counts_as_a_failure():
    class HangingSource(ScriptedSource):
        async def version(self) -> int:
            if self.failing:
                await asyncio.sleep(3600)
            return await super().version()

    source = HangingSource()
    watcher = StoreWatcher(source, Recorder(), interval=0.001, version_timeout=0.01)
    await watcher.start()
    try:
        source.failing = True
        await eventually(lambda: watcher.consecutive_failures >= 2)
        # The admin API's refresh after a write sees the store's own error type, not TimeoutError.
        with pytest.raises(StoreUnavailable, match=r"store version timed out after 0\.01s"):
            await watcher.refresh()
    finally:
        await watcher.stop()
