"""A quiet destination's batch waits longer for company, never past the bound; a busy one keeps the
base delay. The scheduler runs on a fake clock and most of these tests drive its heaps, not its threads."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from processors.delivery.destination import Destination, Linger, LingerBounds
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


def batch(scheduler: Scheduler, dest: Destination, clock: Clock, spans: int, idle: float = 0.0) -> float:
    """``idle`` seconds with nothing, then one span, and ``spans - 1`` more while its batch waits;
    the batch is sent when due. How long the first span waited."""
    clock.now += idle
    dest.stored(1, 100, clock.now)  # what the writer does, then it tells the scheduler
    scheduler.notify_work(dest)
    waited = dest.due - clock.now
    if spans > 1:
        clock.now += waited / 2
        dest.stored(spans - 1, 100 * (spans - 1), clock.now)
        scheduler.notify_work(dest)
    clock.now = dest.due
    assert scheduler._next() is dest  # due: the pool claims it without waiting
    dest.stored(-spans, -100 * spans)  # sent and acknowledged
    scheduler._finish(dest, None)
    return waited


def test_a_quiet_destination_waits_longer_for_its_batch_but_never_past_the_bound(tmp_path: Path) -> None:
    scheduler, dest, clock = pool(tmp_path)
    waits = [batch(scheduler, dest, clock, 1, idle=0.3) for _ in range(12)]  # ~2 spans a second
    assert waits[0] == pytest.approx(BASE)  # nothing known of it yet: the base delay
    assert waits[1] > BASE
    assert max(waits) <= LONGEST + 1e-9
    assert waits[-1] == pytest.approx(LONGEST)  # 8 spans at ~1.5 a second would take longer than the bound


def test_a_busy_destination_is_not_delayed(tmp_path: Path) -> None:
    scheduler, dest, clock = pool(tmp_path)
    waits = [batch(scheduler, dest, clock, 20, idle=0.01) for _ in range(10)]  # ~100 spans a second
    assert waits == pytest.approx([BASE] * 10)
    clock.now += 0.05
    dest.stored(1, 100, clock.now)
    scheduler.notify_work(dest)
    dest.stored(511, 511 * 100, clock.now)
    scheduler.notify_work(dest)
    assert dest.due == clock.now  # a full batch goes at once, as before


def test_a_quiet_destination_that_turns_busy_gets_the_base_delay_back(tmp_path: Path) -> None:
    scheduler, dest, clock = pool(tmp_path)
    for _ in range(6):
        batch(scheduler, dest, clock, 1, idle=1.0)
    assert batch(scheduler, dest, clock, 1, idle=1.0) == pytest.approx(LONGEST)
    waits = [batch(scheduler, dest, clock, 200, idle=0.0) for _ in range(4)]  # 200 in each wait
    assert waits[-1] == pytest.approx(BASE)


def test_without_a_longer_bound_every_batch_waits_the_base_delay(tmp_path: Path) -> None:
    scheduler, dest, clock = pool(tmp_path, max_batch_delay=0.0)  # DeliveryConfig's own default
    assert [batch(scheduler, dest, clock, 1, idle=2.0) for _ in range(5)] == pytest.approx([BASE] * 5)


def test_idle_time_between_batches_does_not_make_a_busy_destination_look_quiet(tmp_path: Path) -> None:
    scheduler, dest, clock = pool(tmp_path)
    assert batch(scheduler, dest, clock, 20, idle=0.01) == pytest.approx(BASE)
    assert batch(scheduler, dest, clock, 20, idle=3600.0) == pytest.approx(BASE)  # an hour idle, then busy
    assert batch(scheduler, dest, clock, 20, idle=0.01) == pytest.approx(BASE)


def test_the_rate_is_what_arrived_while_the_batch_waited() -> None:
    bounds = LingerBounds(BASE, LONGEST, 8)
    linger = Linger(bounds)  # starts as a busy destination: 8 spans per base delay, 40 a second
    assert linger.wait_from(10.0, stored=3) == BASE  # 3 spans stored by the commit that queued it
    assert linger.observe(3, 10.2, bounds) == pytest.approx(0.4)  # none came meanwhile: 20 a second
    linger.wait_from(20.0, stored=1)
    assert linger.observe(5, 20.4, bounds) == pytest.approx(8 / 15)  # 4 in 0.4 s: 10 a second, averaged
    linger.wait_from(30.0, stored=1)
    assert linger.observe(201, 30.5, bounds) == pytest.approx(BASE)  # 400 a second: never below the base
    for start in range(40, 60, 2):
        linger.wait_from(float(start), stored=1)
        assert linger.observe(1, start + 1.5, bounds) <= LONGEST
    assert linger.seconds == pytest.approx(LONGEST)


def test_a_quiet_destinations_spans_wait_up_to_the_bound_through_the_real_pool(managers) -> None:
    """The manager, writer, pool and sender as the gateway runs them, one span at a time."""
    ledger = Ledger()
    with HttpSink(ledger) as sink:
        manager = managers(batch_delay=0.02, max_batch_delay=0.3)
        dest = manager.open("team/q/sink", team="q", name="sink", factory=lambda: ids_exporter(sink.url))
        waited = []
        for i in range(1, 7):
            submitted = time.monotonic()
            dest.submit(make_span(i))
            wait_until(lambda i=i: i in ledger.accepted, what=f"span {i} delivered")
            waited.append(ledger.accepted_at[i] - submitted)
    assert [len(ids) for _at, ids, _status in ledger.attempts] == [1] * 6  # nothing to batch with
    assert dest.linger is not None and dest.linger.seconds == pytest.approx(0.3)  # grew to the bound, no further
    assert waited[-1] >= 0.3 - 0.02  # the last batch waited the bound (a waiting thread may take it 5 ms early)
