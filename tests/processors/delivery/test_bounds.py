"""Caps, memory mode, shutdown, re-opening destinations and metrics, counted by span id."""

from __future__ import annotations

import time

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from processors.delivery.codec import encode_span
from tests.support.sinks import HttpSink, Reply

from .support import Ledger, ids_exporter, make_span, refused_url, wait_until

KEY = "team/a/sink"


def health(manager, key: str = KEY):
    return next(h for h in manager.health() if h.key == key)


def switchable() -> tuple[Ledger, dict[str, bool]]:
    """A sink that answers 503 until ``state["up"]`` is set."""
    state = {"up": False}
    return Ledger(lambda _ids: Reply(200) if state["up"] else Reply(503)), state


def fill_while_down(manager, sink, first: int, more: range):
    """Span ``first`` goes in flight and fails; then ``more`` pile up behind it."""
    dest = manager.open(KEY, team="a", name="sink", factory=lambda: ids_exporter(sink.url))
    dest.submit(make_span(first))
    wait_until(lambda: health(manager).failed >= 1, what="first attempt failed")
    for i in more:
        dest.submit(make_span(i))
    wait_until(lambda: accounted(health(manager)) == 1 + len(more), what="every span spooled or refused")


def accounted(h) -> int:
    """Spans that reached the store plus those refused before it (cap drops were stored first)."""
    return h.spooled + h.dropped.get("buffer_full", 0)


def test_spool_cap_drops_exactly_the_oldest_spans_behind_the_batch_in_flight(managers) -> None:
    size = len(encode_span(make_span(1)))
    assert {len(encode_span(make_span(i))) for i in (1, 99, 12345)} == {size}
    ledger, state = switchable()
    with HttpSink(ledger) as sink:
        manager = managers(max_spool_bytes=10 * size + size // 2, max_backoff=0.1)
        fill_while_down(manager, sink, 1, range(2, 52))
        dropped, queued = health(manager).dropped, health(manager).queued
        state["up"] = True
        wait_until(lambda: health(manager).delivered == 10, what="retained spans delivered")
    assert (dropped, queued) == ({"spool_full": 41}, 10)
    assert ledger.accepted == [1, *range(43, 52)]  # the one in flight, then the 9 newest, in order


def test_memory_mode_is_bounded_and_every_drop_is_counted(managers) -> None:
    ledger, state = switchable()
    with HttpSink(ledger) as sink:
        manager = managers(durable=False, memory_queue_size=5, max_backoff=0.1)
        fill_while_down(manager, sink, 1, range(2, 22))
        dropped = health(manager).dropped
        state["up"] = True
        wait_until(lambda: health(manager).delivered == 5, what="retained spans delivered")
    assert sum(dropped.values()) == 16 and set(dropped) <= {"spool_full", "buffer_full"}
    assert len(set(ledger.accepted)) == len(ledger.accepted) == 5 and ledger.accepted[0] == 1
    assert manager.spool_status()["slot"] is None  # no file, no slot


def test_shutdown_flushes_what_it_can_and_leaves_the_rest_for_the_next_start(managers) -> None:
    up, down = Ledger(), Ledger(lambda _ids: Reply(503))
    with HttpSink(up) as up_sink, HttpSink(down) as down_sink:
        first = managers(batch_delay=5.0)  # only the flush makes these go out in time
        healthy = first.open("team/a/up", team="a", name="up", factory=lambda: ids_exporter(up_sink.url))
        broken = first.open("team/a/down", team="a", name="down", factory=lambda: ids_exporter(down_sink.url))
        for i in range(1, 101):
            healthy.submit(make_span(i))
            broken.submit(make_span(i))
        started = time.monotonic()
        first.shutdown(timeout=0.5)
        took = time.monotonic() - started
        healthy.submit(make_span(101))
        assert sorted(up.accepted) == list(range(1, 101))
        assert health(first, "team/a/up").dropped == {"closed": 1}
        down.script = lambda _ids: Reply(200)
        second = managers()
        second.open("team/a/down", team="a", name="down", factory=lambda: ids_exporter(down_sink.url))
        wait_until(lambda: health(second, "team/a/down").delivered == 100, what="left-overs delivered")
    assert took < 2.0
    assert sorted(down.accepted) == list(range(1, 101))


def test_reopen_swaps_the_exporter_and_keeps_the_queue_close_orphans_it(managers) -> None:
    ledger = Ledger()
    with HttpSink(ledger) as sink:
        manager = managers()
        broken = ids_exporter(refused_url())
        dest = manager.open(KEY, team="a", name="sink", factory=lambda: broken)
        for i in range(1, 11):
            dest.submit(make_span(i))
        wait_until(lambda: health(manager).failed >= 1, what="first attempt failed")
        again = manager.open(KEY, team="a", name="sink", factory=lambda: ids_exporter(sink.url))
        wait_until(lambda: health(manager).delivered == 10, what="delivery through the new exporter")
        manager.close(KEY)
        again.submit(make_span(11))
        after_close = health(manager)
    assert again is dest and broken.shut_down
    assert sorted(ledger.accepted) == list(range(1, 11))
    assert (after_close.state, after_close.dropped) == ("orphaned", {"closed": 1})


def test_metrics_count_outcomes_and_observe_queued(managers) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    ledger = Ledger()
    with HttpSink(ledger) as sink:
        manager = managers(meter=provider.get_meter("test"))
        dest = manager.open(KEY, team="a", name="sink", factory=lambda: ids_exporter(sink.url))
        for i in range(1, 4):
            dest.submit(make_span(i))
        dest.submit(None)  # type: ignore[arg-type]  # not a span: counted, never raised
        wait_until(lambda: health(manager).delivered == 3, what="delivered")
    points = {
        (m.name, tuple(sorted(p.attributes.items()))): p.value
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        for p in m.data.data_points
    }
    attrs = (("spangate.destination", KEY), ("spangate.team", "a"))
    assert points[("spangate.delivery.spans", (("outcome", "delivered"), *attrs))] == 3
    assert points[("spangate.delivery.spans", (("outcome", "dropped"), ("reason", "error"), *attrs))] == 1
    assert points[("spangate.delivery.queued", attrs)] == 0
    assert health(manager).dropped == {"error": 1}
    provider.shutdown()
