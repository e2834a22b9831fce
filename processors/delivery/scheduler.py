"""A shared pool of export threads that serves whichever destinations have due work.

Destinations wait in one of two heaps ordered by due time; a destination in backoff is only a
heap entry, it holds no thread. Isolation against dead destinations comes from two rules:

* **probation**: a destination whose last attempt failed or stalled waits in the probation heap,
  and at most ``probation_workers`` of those run at once, so failing destinations cannot occupy
  every thread with export timeouts;
* **spares**: a watchdog notices an export of a destination *not* on probation running longer
  than ``stall_after`` (a black hole not yet caught), moves it to probation and starts a spare
  thread in its place; a thread that finishes while the pool is above its size exits. Stalls on
  probation need no spare: the quota already bounds them. So a slow destination holds a spare,
  never one of the ``workers`` the others need. The spares are bounded by the export deadline (the
  export transport ends every exchange by ``export_timeout``): the pool keeps ``workers`` threads
  that are not stalled, each starts at most one stalling export per ``stall_after``, so
  ``workers * ceil(export_timeout / stall_after)`` spares cover every stall still running. With
  only ``workers`` spares, as before, 16 destinations answering a byte every few seconds held all
  8 workers and their 8 spares and stopped delivery for every team; many teams on one host that
  turns slow are that case.

Each destination is in at most one place (idle, a heap, or one thread): send concurrency is 1.

Wake-ups are kept far below one per run. Of the idle threads, one (the **timer**) waits until the
head of the heaps is due; the others wait untimed until work is due now. A push wakes a thread
only when it changes what the timer waits for (an earlier head, or no timer and nobody running to
come back and take the role), and a thread that claims a run hands the timer role over only when
more work is already due. A thread that is awake takes a waiting destination up to a quarter of
the batch delay early (``early``), so with many quiet destinations one thread runs them back to
back instead of sleeping and being woken for each; the first of them still waits its full delay.
When no thread is timer and the head has been due for ``_RESCUE`` seconds (the runs are slow to
come back) the watchdog wakes an idle thread. With one destination per team and the batch delay,
1,000 teams are 1,000 future heap entries: waking a thread for each (as a plain condition wait
did, and every idle thread at each due time) cost more CPU than the exports themselves.

How long a batch waits is each destination's own ``Linger``: ``batch_delay`` for a busy one, up to
``max_batch_delay`` for a quiet one, measured at each run this pool claims after a wait.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .config import DeliveryConfig
from .destination import IDLE, QUEUED, RUNNING, Destination, Linger, LingerBounds

_RESCUE = 0.02  # seconds the head may be overdue with no timer thread before the watchdog wakes one
_FOLLOWER_WAIT = 1.0  # idle threads without a deadline still look this often (a safety net only)


@dataclass(order=True)
class _Entry:
    due: float
    seq: int
    token: int = field(compare=False)
    dest: Destination = field(compare=False)


class Scheduler:
    def __init__(self, config: DeliveryConfig, run: Callable[[Destination], float | None], logger: logging.Logger,
                 clock: Callable[[], float] = time.monotonic):
        self._config, self._run, self._log = config, run, logger
        self._clock = clock  # due times; the waits themselves are real time (tests drive the heaps, not threads)
        self._bounds = LingerBounds(config.batch_delay, max(config.batch_delay, config.max_batch_delay),
                                    config.linger_target)
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # idle threads with no deadline wait here
        self._timer = threading.Condition(lock)  # the one idle thread that waits for the next due time
        self._timer_due = math.inf  # when the timer thread wakes; inf: no thread has the role
        self._idle = 0  # threads waiting on ``_cond``
        # How early an awake thread takes a destination that waits only for its batch to fill (the
        # ready heap holds no backoff: a failed destination waits in probation).
        self._early = config.batch_delay / 4
        self._ready: list[_Entry] = []
        self._probation: list[_Entry] = []
        self._seq = itertools.count()
        self._busy: dict[int, Destination] = {}
        self._threads = self._spares = self._probation_running = 0
        self._max_spares = config.workers * max(1, math.ceil(config.export_timeout / config.stall_after))
        self._stopping = False
        self.expedite_all = False  # set while flushing: skip the batch delay
        self._all_threads: list[threading.Thread] = []

    def start(self) -> None:
        with self._cond:
            for _ in range(self._config.workers):
                self._spawn()
        threading.Thread(target=self._watch, name="spangate-delivery-watchdog", daemon=True).start()

    def stop(self, timeout: float) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            self._timer.notify_all()
        deadline = time.monotonic() + timeout
        for thread in list(self._all_threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- called by the writer and the manager ------------------------------------------------
    def notify_work(self, dest: Destination) -> None:
        """New spans are stored for ``dest``: make sure it is due, without cutting a backoff short."""
        now = self._clock()
        full = dest.stored_count >= self._config.max_batch or self.expedite_all
        with self._cond:
            linger = self._linger(dest)
            due = now if full else now + linger.seconds
            if dest.exporter is None or dest.sched == RUNNING:
                return  # orphaned, or the running worker re-checks for work when it finishes
            if dest.sched == IDLE or (not dest.in_backoff and due < dest.due):
                if full:
                    linger.lingered = False
                else:
                    linger.wait_from(now, dest.stored_count)
                self._push(dest, due)

    def expedite(self) -> None:
        """Flush: every destination that is waiting only for its batch to fill is due now."""
        now = self._clock()
        with self._cond:
            for entry in list(self._ready) + list(self._probation):
                dest = entry.dest
                if entry.token == dest.token and not dest.in_backoff and dest.due > now:
                    self._push(dest, now)

    # -- the pool ----------------------------------------------------------------------------
    def _push(self, dest: Destination, due: float, wake: bool = True) -> None:
        dest.token += 1
        dest.sched, dest.due = QUEUED, due
        heap = self._probation if dest.suspect else self._ready
        heapq.heappush(heap, _Entry(due, next(self._seq), dest.token, dest))
        if wake:
            self._wake_for(due)

    def _wake_for(self, due: float) -> None:
        """Wake a thread only if nobody already looks at ``due`` in time."""
        if due < self._timer_due:
            if self._timer_due != math.inf:
                self._timer.notify()  # the timer thread waits for something later: re-aim it
            elif self._idle and (not self._busy or due <= self._clock()):
                # No timer: an idle thread takes the role, unless a running thread will come back
                # to take it (the watchdog steps in if that run is slow).
                self._cond.notify()

    def _spawn(self) -> None:
        self._threads += 1
        thread = threading.Thread(target=self._work, name="spangate-delivery", daemon=True)
        self._all_threads = [t for t in self._all_threads if t.is_alive()] + [thread]
        thread.start()

    def _work(self) -> None:
        while (dest := self._next()) is not None:
            try:
                delay = self._run(dest)
            except Exception:  # a bug in the sender must not kill the thread nor lose the batch
                self._log.exception("delivery run failed for %s", dest.key)
                delay = self._config.initial_backoff
            if not self._finish(dest, delay):
                return

    def _next(self) -> Destination | None:
        with self._cond:
            while not self._stopping:
                now = self._clock()
                entry = self._pick(now)
                if entry is not None:
                    return self._claim(entry, now)
                if self._timer_due != math.inf:
                    if self._head_due() < self._timer_due:
                        self._timer.notify()  # pushed without a wake-up (a retry's backoff): re-aim the timer
                    self._idle += 1
                    self._cond.wait(_FOLLOWER_WAIT)
                    self._idle -= 1
                else:
                    wait = self._wait_time(now)
                    self._timer_due = now + wait
                    self._timer.wait(wait)
                    self._timer_due = math.inf
            self._threads -= 1
            return None

    def _pick(self, now: float) -> _Entry | None:
        for heap in (self._ready, self._probation):
            while heap and heap[0].token != heap[0].dest.token:
                heapq.heappop(heap)  # superseded by a later push
        ready = self._ready[0] if self._ready and self._ready[0].due <= now + self._early else None
        probation = None
        quota_left = self._probation_running < self._config.probation_workers
        if self._probation and self._probation[0].due <= now and quota_left:
            probation = self._probation[0]
        if probation is not None and (ready is None or probation < ready):
            return heapq.heappop(self._probation)
        return heapq.heappop(self._ready) if ready is not None else None

    def _wait_time(self, now: float) -> float:
        # A probation head while the quota is used up is not waited for: the thread that frees
        # the quota picks it itself (``_finish`` then ``_next``); counting it would spin every
        # idle thread at the 1 ms floor for as long as the failing destinations occupy the quota.
        heads = [self._ready[0].due] if self._ready else []
        if self._probation and self._probation_running < self._config.probation_workers:
            heads.append(self._probation[0].due)
        return min(1.0, max(0.001, min(heads) - now)) if heads else 1.0

    def _claim(self, entry: _Entry, now: float) -> Destination:
        dest = entry.dest
        dest.token += 1
        dest.sched, dest.run_started, dest.stalled = RUNNING, now, False
        dest.on_probation = dest.suspect
        self._probation_running += dest.on_probation
        linger = self._linger(dest)
        if dest.suspect or dest.pending or self.expedite_all:
            linger.lingered = False  # a retry or a flush: its batch tells no rate
        linger.claimed(min(dest.stored_count, self._config.max_batch), now, self._bounds)
        self._busy[threading.get_ident()] = dest
        if self._idle and self._timer_due == math.inf and self._head_due() <= now:
            self._cond.notify()  # a backlog: more work is due now, let another thread take it
        return dest

    def _head_due(self) -> float:
        """When the next run is due (``inf``: nothing queued); superseded entries count, harmlessly."""
        heads = [self._ready[0].due] if self._ready else []
        if self._probation and self._probation_running < self._config.probation_workers:
            heads.append(self._probation[0].due)
        return min(heads, default=math.inf)

    def _finish(self, dest: Destination, delay: float | None) -> bool:
        """Put ``dest`` back where it belongs; ``False`` when this thread is surplus and must exit."""
        with self._cond:
            self._busy.pop(threading.get_ident(), None)
            self._probation_running -= dest.on_probation
            dest.on_probation = False
            if dest.stalled:
                dest.suspect = True  # slow answers keep a destination on probation
            if dest.spare:
                self._spares -= 1
                dest.spare = False
            dest.sched = IDLE
            self._reschedule(dest, delay)  # no wake-up: this thread looks again right away...
            if self._threads > self._config.workers + min(self._spares, self._max_spares):
                self._threads -= 1
                self._wake_for(self._head_due())  # ...unless it is surplus and exits: then one that will look
                return False
            # No notify_all: this thread goes straight back to _next and sees what it freed (a
            # probation slot) and what it pushed. Waking every idle thread per run cost a herd of
            # thread switches.
            return True

    def _reschedule(self, dest: Destination, delay: float | None) -> None:
        now = self._clock()
        if delay is not None:
            self._push(dest, now + delay, wake=False)
        elif dest.exporter is not None and dest.has_work():  # stored while this run was reading
            self._push(dest, now + self._linger(dest).wait_from(now, dest.stored_count), wake=False)

    def _linger(self, dest: Destination) -> Linger:
        if dest.linger is None:
            dest.linger = Linger(self._bounds)
        return dest.linger

    # -- the watchdog ------------------------------------------------------------------------
    def _watch(self) -> None:
        # Quicker while runs are in flight (they may stall, or keep the timer role vacant); an idle
        # gateway keeps the slower pace.
        slow = max(0.01, min(0.1, self._config.stall_after / 4))
        fast = min(slow, _RESCUE)
        while not self._stopping:
            period = fast if self._busy else slow
            time.sleep(period)
            with self._cond:
                now = self._clock()
                self._check_stalls(now)
                if self._timer_due == math.inf and self._idle and self._head_due() <= now - _RESCUE:
                    self._cond.notify()  # the runs are slow to come back: an idle thread takes the timer

    def _check_stalls(self, now: float) -> None:
        for dest in self._busy.values():
            if dest.stalled or now - dest.run_started < self._config.stall_after:
                continue
            dest.stalled = dest.suspect = True
            if dest.on_probation:
                continue
            dest.on_probation = dest.spare = True
            self._probation_running += 1
            self._spares += 1
            if self._threads < self._config.workers + min(self._spares, self._max_spares):
                self._log.info("destination %s stalled; starting a spare delivery thread", dest.key)
                self._spawn()
