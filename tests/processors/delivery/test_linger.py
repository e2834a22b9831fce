"""A quiet destination's batch waits longer for company, never past the bound; a busy one, and one
too quiet to gain from waiting, keep the base delay. The scheduler runs on a fake clock and most of
these tests drive its heaps, not its threads."""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path

import pytest

from processors.delivery.destination import QUEUED, Destination
from processors.delivery.reporting import Telemetry
from processors.delivery.scheduler import Scheduler
from tests.support.sinks import HttpSink

from .conftest import fast_config
from .support import Ledger, ids_exporter, make_span, wait_until

BASE, LONGEST = 0.2, 1.5


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pool(tmp_path: Path, **overrides: object) -> tuple[Scheduler, Destination, Clock]:
    config = fast_config(tmp_path, batch_delay=BASE, **{"max_batch_delay": LONGEST, **overrides})
    clock = Clock()
    scheduler = Scheduler(config, lambda _d: None, logging.getLogger("test"), clock=clock)
    telemetry = Telemetry(None, logging.getLogger("test"), list, 10.0)
    dest = Destination("team/t/x", "t", "x", buffer_size=10_000, telemetry=telemetry, on_dirty=lambda _d: None)
    dest.exporter = object()  # type: ignore[assignment]  # only "not None" matters to the scheduler
    return scheduler, dest, clock


def run(scheduler: Scheduler, dest: Destination, clock: Clock, arrivals: list[float]) -> list[tuple[int, float]]:
    """Store a span at each of ``arrivals`` (as the writer does, telling the scheduler) and send each
    batch when it is due (exports take no time here); each batch's size and its first span's wait."""
    batches: list[tuple[int, float]] = []
    first: float | None = None
    pending = list(arrivals)
    while pending or dest.sched == QUEUED:
        if dest.sched == QUEUED and (not pending or dest.due <= pending[0]):
            clock.now = dest.due
            assert scheduler._next() is dest  # due: the pool claims it without waiting
            assert first is not None
            batches.append((dest.stored_count, clock.now - first))
            dest.stored(-dest.stored_count, -dest.stored_size)  # sent and acknowledged
            scheduler._finish(dest, None)
            first = None
        else:
            clock.now = pending.pop(0)
            first = clock.now if first is None else first
            dest.stored(1, 100, clock.now)
            scheduler.notify_work(dest)
    return batches


def every(seconds: float, n: int, start: float = 1000.0) -> list[float]:
    return [start + i * seconds for i in range(n)]


def test_a_quiet_destination_waits_longer_for_its_batch_but_never_past_the_bound(tmp_path: Path) -> None:
    scheduler, dest, clock = pool(tmp_path)
    batches = run(scheduler, dest, clock, every(0.4, 60))  # 2.5 spans a second
    waits = [wait for _size, wait in batches]
    assert waits[0] == pytest.approx(BASE)  # nothing known of it yet: the base delay
    assert max(waits) <= LONGEST + 1e-9
    assert all(later <= 2 * earlier + 1e-9 for earlier, later in itertools.pairwise(waits))  # step by step
    assert waits[-1] == pytest.approx(LONGEST)  # 4 spans at 2.5 a second would take longer than the bound
    assert [size for size, _wait in batches[-6:-1]] == [4] * 5  # the bound's worth: 1.5 s of spans, not 1
    assert len(batches) < 25  # at the base delay: 60 export requests


def test_a_destination_too_quiet_to_gather_a_second_span_within_the_bound_keeps_the_base_delay(tmp_path) -> None:
    scheduler, dest, clock = pool(tmp_path)
    batches = run(scheduler, dest, clock, every(3.0, 20))  # a call every 3 s: waiting 1.5 s would gain nothing
    assert [(size, round(wait, 9)) for size, wait in batches] == [(1, BASE)] * 20


def test_a_busy_destination_is_not_delayed(tmp_path: Path) -> None:
    scheduler, dest, clock = pool(tmp_path)
    batches = run(scheduler, dest, clock, every(0.01, 2000))  # 100 spans a second
    assert {round(wait, 9) for _size, wait in batches} == {BASE}
    assert all(size >= 20 for size, _wait in batches[:-1])  # the last: what was left
    clock.now += 0.05
    dest.stored(1, 100, clock.now)
    scheduler.notify_work(dest)
    dest.stored(511, 511 * 100, clock.now)
    scheduler.notify_work(dest)
    assert dest.due == clock.now  # a full batch goes at once, as before


def test_a_destination_of_25_spans_a_second_is_not_delayed_either(tmp_path: Path) -> None:
    """10 teams at ~250 calls/s: they waited up to 0.4 s while aiming at 8 spans per export."""
    scheduler, dest, clock = pool(tmp_path)
    batches = run(scheduler, dest, clock, every(0.04, 500))
    assert {round(wait, 9) for _size, wait in batches} == {BASE}


def test_an_idle_hour_does_not_make_a_busy_destination_look_quiet(tmp_path: Path) -> None:
    scheduler, dest, clock = pool(tmp_path)
    busy = every(0.01, 200)
    batches = run(scheduler, dest, clock, busy + every(0.01, 200, start=busy[-1] + 3600))
    assert {round(wait, 9) for _size, wait in batches} == {BASE}


def test_a_quiet_destination_that_turns_busy_gets_the_base_delay_back(tmp_path: Path) -> None:
    scheduler, dest, clock = pool(tmp_path)
    quiet = every(0.4, 40)
    batches = run(scheduler, dest, clock, quiet + every(0.005, 1000, start=quiet[-1] + 0.4))
    waits = [wait for _size, wait in batches]
    assert LONGEST in [pytest.approx(w) for w in waits]
    assert waits[-3:] == pytest.approx([BASE] * 3)


def test_a_burst_after_a_quiet_spell_is_sent_at_the_base_delay(tmp_path: Path) -> None:
    scheduler, dest, clock = pool(tmp_path)
    quiet = every(0.4, 40)
    batches = run(scheduler, dest, clock, quiet + every(0.005, 1000, start=quiet[-1] + 5.0))
    sent, quiet_batches = 0, 0
    while sent < len(quiet):
        sent, quiet_batches = sent + batches[quiet_batches][0], quiet_batches + 1
    first, *rest = [wait for _size, wait in batches[quiet_batches:]]
    assert first == pytest.approx(LONGEST)  # the first batch of the burst waits what the quiet spell set
    assert rest == pytest.approx([BASE] * len(rest))  # the next ones do not


def test_without_a_longer_bound_every_batch_waits_the_base_delay(tmp_path: Path) -> None:
    scheduler, dest, clock = pool(tmp_path, max_batch_delay=0.0)  # DeliveryConfig's own default
    batches = run(scheduler, dest, clock, every(0.4, 30))
    assert {round(wait, 9) for _size, wait in batches} == {BASE}


def test_a_quiet_destinations_spans_wait_up_to_the_bound_through_the_real_pool(managers) -> None:
    """The manager, writer, pool and sender as the gateway runs them, one span at a time."""
    ledger = Ledger()
    with HttpSink(ledger) as sink:
        manager = managers(batch_delay=0.02, max_batch_delay=0.3)
        dest = manager.open("team/q/sink", team="q", name="sink", factory=lambda: ids_exporter(sink.url))
        waited = []
        for i in range(1, 21, 2):  # two spans at a time, the next two once they are delivered
            submitted = time.monotonic()
            dest.submit(make_span(i))
            dest.submit(make_span(i + 1))
            wait_until(lambda i=i: {i, i + 1} <= set(ledger.accepted), what=f"spans {i} and {i + 1} delivered")
            waited.append(ledger.accepted_at[i] - submitted)
    assert dest.linger is not None and dest.linger.seconds == pytest.approx(0.3)  # grew to the bound, no further
    assert waited[-1] >= 0.3 - 0.02  # the last batch waited the bound (a waiting thread may take it 5 ms early)
