"""The delivery history behind the admin page's charts: one sample per destination per read, the
last hour only, a bounded ring, and destinations that are gone forgotten."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import pytest

from app.api.history import DeliveryHistory
from processors.delivery import DeliveryConfig, DeliveryManager, DestinationHealth

HEALTH = DestinationHealth(key="team/t/generic/success", team="t", name="generic", queued=0, delivered=0,
                           retried=0, failed=0, dead_lettered=0, lag_p50_ms=None)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def history(tmp_path: Path, clock: Clock) -> DeliveryHistory:
    return DeliveryHistory(DeliveryManager(DeliveryConfig(spool_dir=tmp_path)), interval=60, window=300, clock=clock)


def test_each_read_is_a_sample_and_the_ring_keeps_the_window_only(tmp_path: Path) -> None:
    clock = Clock()
    kept = history(tmp_path, clock)
    for minute in range(10):
        kept.record([replace(HEALTH, delivered=minute * 5, failed=minute, lag_p50_ms=12.5)])
        clock.now += 60
    samples = kept.samples(HEALTH.key)
    assert [s["delivered"] for s in samples] == [25, 30, 35, 40, 45]  # five minutes' worth at one a minute
    assert samples[-1] == {"t": clock.now - 60, "delivered": 45, "failed": 9, "dead_lettered": 0, "lag_p50_ms": 12.5}
    assert len(kept._rings[HEALTH.key]) == 6  # bounded: window / interval + 1


def test_a_destination_that_is_gone_or_orphaned_is_forgotten(tmp_path: Path) -> None:
    clock = Clock()
    kept = history(tmp_path, clock)
    other = replace(HEALTH, key="global/generic", team=None)
    kept.record([HEALTH, other])
    kept.record([replace(HEALTH, state="orphaned"), other])
    assert kept.samples(HEALTH.key) == []
    assert len(kept.samples(other.key)) == 2
    assert kept.samples("team/never/seen/success") == []


class Recorded(DeliveryHistory):
    __slots__ = ("recorded",)

    def record(self, health: Iterable[DestinationHealth]) -> None:
        super().record(health)
        self.recorded.set()


async def test_the_task_samples_at_once_and_stops_when_cancelled(tmp_path: Path) -> None:
    kept = Recorded(DeliveryManager(DeliveryConfig(spool_dir=tmp_path)), interval=3600)
    kept.recorded = asyncio.Event()
    task = asyncio.create_task(kept.run())
    await asyncio.wait_for(kept.recorded.wait(), 5)  # the first sample is taken at start, not an interval in
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
