"""Hooks: code that acts on each call at fixed points of the proxy, in configured order.

Points, in the order a call meets them:

- ``before_upstream(call)``: may change ``call.request`` or raise a ``GatewayError`` to reject
  the call (the client gets that error; the model is never called).
- ``after_upstream(call)``: complete answers only, ``call.response`` set; may replace
  ``call.response`` (the client gets the new one) or raise a ``GatewayError`` (the answer is not sent).
- ``stream_filter(call)``: streams only; a ``StreamFilter`` that sees every piece before the
  client does, and may hold pieces back or end the stream with an error.
- ``on_stream_event(call, chunk)``: each decoded stream chunk, on the request path: must only hand
  work to ``HookChain.runner``.
- ``on_success(call)`` / ``on_failure(call)``: after the call, off the request path, with
  ``call.logged()`` (content removed when this call may not log it), under a timeout.

A hook overrides only the points it needs; the chain keeps, per point, the hooks that override it,
so a point nobody uses costs one empty-tuple test per call. Errors in user code on the
background points are logged with their traceback and counted per hook (``HookStats``), never
seen by the client.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from app.calls.record import CallRecord

log = logging.getLogger("spangate.hooks")

DEFAULT_TIMEOUT = 30.0  # seconds a background hook may run
DEFAULT_MAX_PENDING = 10_000  # background hook runs in flight or queued, all hooks together
DEFAULT_THREADS = 4  # for synchronous user code


class StreamFilter(Protocol):
    async def feed(self, piece: bytes) -> bytes:
        """SSE bytes about to go to the client; returns what to send now (may hold bytes back)."""

    async def end(self) -> bytes:
        """The upstream stream ended well: what is still held back, or raise ``GatewayError`` to
        end the stream with that error event instead."""


class CallHook:
    """Base class for hooks; ``name`` labels its metrics and logs."""

    name = "hook"

    async def before_upstream(self, call: CallRecord) -> None:
        return None

    async def after_upstream(self, call: CallRecord) -> None:
        return None

    def stream_filter(self, call: CallRecord) -> StreamFilter | None:
        return None

    def on_stream_event(self, call: CallRecord, chunk: dict[str, Any]) -> None:
        return None

    async def on_success(self, call: CallRecord) -> None:
        return None

    async def on_failure(self, call: CallRecord) -> None:
        return None

    def attach(self, runner: BackgroundRunner) -> None:
        """Called once when the chain is built: hooks that hand work off keep the runner."""
        return None

    async def aclose(self) -> None:
        return None


@dataclass(slots=True)
class HookStats:
    runs: int = 0
    errors: int = 0
    timeouts: int = 0
    dropped: int = 0  # not run: too much background work pending (logged)
    last_error: str | None = None


class BackgroundRunner:
    """Runs hook work off the request path: coroutines as tasks under a timeout, synchronous
    functions in a bounded thread pool. At most ``max_pending`` runs wait or run at once; beyond
    that a run is dropped, counted and logged (one line per hook per 1,000 drops)."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, max_pending: int = DEFAULT_MAX_PENDING,
                 threads: int = DEFAULT_THREADS) -> None:
        self.timeout = timeout
        self.max_pending = max_pending
        self.stats: dict[str, HookStats] = {}
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._pending = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()

    def stats_for(self, name: str) -> HookStats:
        stats = self.stats.get(name)
        if stats is None:
            stats = self.stats[name] = HookStats()
        return stats

    def submit(self, name: str, work: Callable[[], Awaitable[Any]]) -> None:
        """Run ``work()`` (a coroutine function) as a task; never raises."""
        if not self._admit(name):
            return
        task = asyncio.get_running_loop().create_task(self._run_async(name, work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def submit_sync(self, name: str, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the pool's threads; never raises. The timeout cannot stop a thread:
        a call over it is counted as a timeout when it finally returns."""
        if not self._admit(name):
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="spangate-hook")
        self._pool.submit(self._run_sync, name, fn, args)

    def _admit(self, name: str) -> bool:
        stats = self.stats_for(name)
        with self._lock:
            if self._pending >= self.max_pending:
                stats.dropped += 1
                full = True
            else:
                self._pending += 1
                full = False
        if full and stats.dropped % 1000 == 1:
            log.warning("hook %s: run dropped, %d background hook runs pending (%d dropped so far)",
                        name, self.max_pending, stats.dropped)
        return not full

    def _done(self) -> None:
        with self._lock:
            self._pending -= 1

    async def _run_async(self, name: str, work: Callable[[], Awaitable[Any]]) -> None:
        stats = self.stats_for(name)
        try:
            await asyncio.wait_for(work(), self.timeout)
            stats.runs += 1
        except TimeoutError:
            stats.timeouts += 1
            log.warning("hook %s: still running after %.0f s; cancelled", name, self.timeout)
        except Exception as exc:
            self._failed(name, stats, exc)
        finally:
            self._done()

    def _run_sync(self, name: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        stats = self.stats_for(name)
        loop_time = _monotonic()
        try:
            fn(*args)
            if _monotonic() - loop_time > self.timeout:
                stats.timeouts += 1
                log.warning("hook %s: took over %.0f s", name, self.timeout)
            else:
                stats.runs += 1
        except Exception as exc:
            self._failed(name, stats, exc)
        finally:
            self._done()

    @staticmethod
    def _failed(name: str, stats: HookStats, exc: BaseException) -> None:
        stats.errors += 1
        stats.last_error = type(exc).__name__
        log.error("hook %s raised %s", name, type(exc).__name__, exc_info=exc)

    @property
    def pending(self) -> int:
        return self._pending

    async def drain(self, timeout: float) -> None:
        """Wait (up to ``timeout``) for background runs, at shutdown."""
        deadline = _monotonic() + timeout
        while self._pending and _monotonic() < deadline:
            await asyncio.sleep(0.02)

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


_monotonic = time.monotonic


def _overrides(hook: CallHook, point: str) -> bool:
    return getattr(type(hook), point) is not getattr(CallHook, point)


class HookChain:
    """The configured hooks, in order, split by point."""

    def __init__(self, hooks: Sequence[CallHook] = (), runner: BackgroundRunner | None = None) -> None:
        self.hooks = tuple(hooks)
        self.runner = runner or BackgroundRunner()
        for hook in self.hooks:
            hook.attach(self.runner)
            self.runner.stats_for(hook.name)
        self.before = tuple(h for h in self.hooks if _overrides(h, "before_upstream"))
        self.after = tuple(h for h in self.hooks if _overrides(h, "after_upstream"))
        self.filters = tuple(h for h in self.hooks if _overrides(h, "stream_filter"))
        self.stream_events = tuple(h for h in self.hooks if _overrides(h, "on_stream_event"))
        self.success = tuple(h for h in self.hooks if _overrides(h, "on_success"))
        self.failure = tuple(h for h in self.hooks if _overrides(h, "on_failure"))
        # Whether a streamed answer must be assembled into ``call.response``.
        self.wants_response = bool(self.after or self.filters or self.success or self.failure)

    def __bool__(self) -> bool:
        return bool(self.hooks)

    async def before_upstream(self, call: CallRecord) -> None:
        for hook in self.before:
            await hook.before_upstream(call)

    async def after_upstream(self, call: CallRecord) -> None:
        for hook in self.after:
            await hook.after_upstream(call)

    def stream_filters(self, call: CallRecord) -> list[StreamFilter]:
        return [f for h in self.filters if (f := h.stream_filter(call)) is not None]

    def stream_event(self, call: CallRecord, chunk: dict[str, Any]) -> None:
        for hook in self.stream_events:
            try:
                hook.on_stream_event(call, chunk)
            except Exception as exc:
                BackgroundRunner._failed(hook.name, self.runner.stats_for(hook.name), exc)

    def finished(self, call: CallRecord) -> None:
        """Schedule the success or failure hooks with the logged view of ``call``; never raises."""
        hooks = self.success if call.error is None else self.failure
        if not hooks:
            return
        try:
            view = call.logged()
        except Exception as exc:  # a record that cannot be copied must not fail the call
            log.error("could not prepare the call record for hooks: %s", type(exc).__name__, exc_info=exc)
            return
        for hook in hooks:
            method = hook.on_success if call.error is None else hook.on_failure
            self.runner.submit(hook.name, lambda m=method: m(view))

    async def aclose(self, timeout: float = 5.0) -> None:
        await self.runner.drain(timeout)
        for hook in self.hooks:
            try:
                await hook.aclose()
            except Exception as exc:
                log.error("closing hook %s failed: %s", hook.name, type(exc).__name__)
        self.runner.close()


NO_HOOKS = HookChain()
