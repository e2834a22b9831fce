"""A destination that never answers must not delay the others (nor the callers of submit)."""

from __future__ import annotations

import heapq
import logging
import math
import threading
import time
from pathlib import Path

from processors.delivery.destination import Destination
from processors.delivery.reporting import Telemetry
from processors.delivery.scheduler import Scheduler, _Entry
from tests.support.sinks import HttpSink

from .conftest import fast_config
from .support import BlackHole, Ledger, ids_exporter, make_span, wait_until


def test_black_holed_destinations_do_not_delay_healthy_ones(managers) -> None:
    # More black holes than workers: without probation and spare threads every worker would sit
    # in a 3 s export timeout and the healthy destinations would wait behind them.
    ledgers = [Ledger() for _ in range(3)]
    holes = [BlackHole() for _ in range(3)]
    sinks = [HttpSink(ledger) for ledger in ledgers]
    for server in holes + sinks:
        server.__enter__()
    try:
        manager = managers(workers=2, probation_workers=1, export_timeout=3.0, max_backoff=0.3)
        dests = [
            manager.open(f"team/h{n}/sink", team=f"h{n}", name="sink", factory=lambda s=s: ids_exporter(s.url))
            for n, s in enumerate(sinks)
        ]
        black = [
            manager.open(f"team/b{n}/hole", team=f"b{n}", name="hole", factory=lambda h=h: ids_exporter(h.url, 3.0))
            for n, h in enumerate(holes)
        ]
        submitted = run_load(dests + black, seconds=3.0)
        for dest in dests:
            wait_until(lambda d=dest: delivered(manager, d.key) == len(submitted), what="healthy delivered")
        lags = sorted(ledger.accepted_at[i] - submitted[i] for ledger in ledgers for i in submitted)
        pool = [t for t in threading.enumerate() if t.name == "spangate-delivery"]
        health = {h.key: h for h in manager.health()}
    finally:
        for server in holes + sinks:
            server.__exit__(None, None, None)
    assert lags[int(len(lags) * 0.99)] < 2.0
    assert len(pool) <= 2 + 3  # the workers, and a spare for each black hole while it stalls
    for n in range(3):
        assert health[f"team/b{n}/hole"].delivered == 0
        assert health[f"team/b{n}/hole"].queued == len(submitted)
        assert health[f"team/h{n}/sink"].delivered == len(submitted)
        assert sorted(ledgers[n].accepted) == sorted(submitted)


def delivered(manager, key: str) -> int:
    return next(h.delivered for h in manager.health() if h.key == key)


def run_load(dests, seconds: float) -> dict[int, float]:
    """One span to every destination each 50 ms; returns span id -> submit time (monotonic)."""
    submitted: dict[int, float] = {}
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        i += 1
        submitted[i] = time.monotonic()
        for dest in dests:
            dest.submit(make_span(i))
        time.sleep(0.05)
    return submitted


def test_idle_threads_do_not_poll_a_probation_entry_while_the_quota_is_used_up(tmp_path) -> None:
    """Only the thread that frees the quota can run it; waking every millisecond for it burnt CPU."""
    config = fast_config(tmp_path, probation_workers=1)
    scheduler = Scheduler(config, lambda _d: None, logging.getLogger("test"))
    telemetry = Telemetry(None, logging.getLogger("test"), list, 10.0)
    suspect = Destination("team/s/x", "s", "x", buffer_size=10, telemetry=telemetry, on_dirty=lambda _d: None)
    heapq.heappush(scheduler._probation, _Entry(0.0, 0, suspect.token, suspect))  # due long ago
    assert scheduler._wait_time(now=10.0) == 0.001  # quota free: it is due, look now
    scheduler._probation_running = 1
    assert scheduler._wait_time(now=10.0) == 1.0  # quota used up: nothing to wait for


def settled(scheduler: Scheduler, idle: int) -> bool:
    """One thread waits as the timer (for the next due time) and ``idle`` others wait for work."""
    with scheduler._cond:
        return scheduler._timer_due != math.inf and scheduler._idle == idle


def _switches(tids: list[int]) -> int:
    """Times these threads went to sleep so far (Linux; preemptions are not counted)."""
    total = 0
    for tid in tids:
        for line in Path(f"/proc/self/task/{tid}/status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                total += int(line.split()[1])
    return total


def test_work_due_later_wakes_no_idle_thread_and_runs_each_destination_once_when_due(tmp_path) -> None:
    """With 1,000 teams each push is for a destination due a batch delay later; waking a thread per
    push, and every idle thread at each due time, cost more CPU than the exports themselves."""
    ran: list[Destination] = []
    config = fast_config(tmp_path, workers=8, batch_delay=0.5)
    scheduler = Scheduler(config, lambda d: ran.append(d), logging.getLogger("test"))
    telemetry = Telemetry(None, logging.getLogger("test"), list, 10.0)
    dests = [Destination(f"team/t{i}/x", f"t{i}", "x", buffer_size=10, telemetry=telemetry, on_dirty=lambda _d: None)
             for i in range(200)]
    for dest in dests:
        dest.exporter = object()  # type: ignore[assignment]  # only "not None" matters to the scheduler
    scheduler.start()
    try:
        wait_until(lambda: settled(scheduler, idle=7), what="one timer thread and seven idle ones")
        tids = [t.native_id for t in scheduler._all_threads if t.native_id is not None]
        before = _switches(tids)
        for dest in dests[:100]:  # spread out, as the writer's commits are
            scheduler.notify_work(dest)  # due in 0.5 s
            time.sleep(0.001)
        pushed = _switches(tids) - before
        for dest in dests[100:]:
            scheduler.notify_work(dest)
        wait_until(lambda: len(ran) == len(dests), what="every destination run once")
        woken = _switches(tids) - before
    finally:
        scheduler.stop(2.0)
    assert pushed <= 20  # a thread per push: >= 100
    # The runs come due within a quarter of the batch delay of each other: an awake thread takes
    # them back to back (a few sleeps in all), where a wake-up per run cost ~120 and a wake-up per
    # idle thread at each due time ~1,200.
    assert woken <= len(dests) // 4
    assert sorted(d.key for d in ran) == sorted(d.key for d in dests)


def test_a_retry_due_before_what_the_timer_waits_for_runs_on_time(tmp_path) -> None:
    """A failed run comes back with its backoff and no wake-up. Meanwhile another thread became the
    timer, waiting for something later: the thread that finished the run must re-aim it."""
    runs: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    a_running, b_pushed = threading.Event(), threading.Event()

    def run(dest: Destination) -> float | None:
        runs[dest.team].append(time.monotonic())  # type: ignore[index]
        if dest.team == "a" and len(runs["a"]) == 1:
            a_running.set()
            b_pushed.wait(5)  # while it runs, the other thread runs c, then waits as the timer
            dest.suspect = True  # what the sender does on a retryable failure
            return 0.1
        return None

    config = fast_config(tmp_path, workers=2, batch_delay=2.0)
    scheduler = Scheduler(config, run, logging.getLogger("test"))
    telemetry = Telemetry(None, logging.getLogger("test"), list, 10.0)
    a, b, c = (Destination(f"team/{t}/x", t, "x", buffer_size=10, telemetry=telemetry, on_dirty=lambda _d: None)
               for t in "abc")
    a.exporter = b.exporter = c.exporter = object()  # type: ignore[assignment]
    scheduler.start()
    try:
        wait_until(lambda: settled(scheduler, idle=1), what="one timer thread and one idle one")
        scheduler.expedite_all = True
        scheduler.notify_work(a)  # due now: one thread runs it, until b is pushed
        a_running.wait(5)
        scheduler.notify_work(c)  # due now: the other thread runs it, then becomes the timer
        scheduler.expedite_all = False
        wait_until(lambda: bool(runs["c"]) and settled(scheduler, idle=0), what="c run, its thread the timer")
        scheduler.notify_work(b)  # due in 2 s
        b_pushed.set()
        wait_until(lambda: len(runs["a"]) == 2, timeout=5, what="the retry")
    finally:
        scheduler.stop(3.0)
    assert runs["c"] and not runs["b"]
    assert runs["a"][1] - runs["a"][0] < 0.6  # the run + 0.1 s backoff; not when the timer next wakes (1 s)
