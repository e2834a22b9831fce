"""The writer thread's drain, driven by hand against a recording store (no thread started)."""

from __future__ import annotations

import logging
import threading
import time

from processors.delivery.codec import decode_span
from processors.delivery.destination import Destination
from processors.delivery.queues import Lane, MemoryStore
from processors.delivery.reporting import Telemetry
from processors.delivery.writer import SpoolWriter

from .support import make_span


class RecordingStore:
    """Keeps what each commit was given; measures bytes like the SQLite spool."""

    encodes = True

    def __init__(self) -> None:
        self.commits: list[dict[str, list[tuple[float, object]]]] = []
        self.spans: list[dict[str, list[object]] | None] = []

    def measure(self, item: bytes) -> int:
        return len(item)

    def commit(self, rows, excess, spans=None):
        self.commits.append(rows)
        self.spans.append(spans)
        return {}


def destinations(*keys: str) -> tuple[Telemetry, list[Destination]]:
    telemetry = Telemetry(None, logging.getLogger("test"), list, 10.0)
    dests = []
    for key in keys:
        dest = Destination(key, None, key, buffer_size=100, telemetry=telemetry, on_dirty=lambda _d: None)
        dest.closed = False
        dests.append(dest)
    return telemetry, dests


def test_a_span_routed_to_two_destinations_is_encoded_once_per_drain() -> None:
    telemetry, (a, b) = destinations("a", "b")
    store = RecordingStore()
    a.lane = b.lane = Lane(store, 1 << 30)  # type: ignore[arg-type]
    writer = SpoolWriter(telemetry, logging.getLogger("test"), lambda _d: None)
    shared, own = make_span(1), make_span(2)
    for dest, spans in ((a, [shared]), (b, [own, shared])):
        for span in spans:
            dest.submit(span)
        writer.notify(dest)
    writer.drain()
    (rows,) = store.commits
    assert rows["a"][0][1] is rows["b"][1][1]  # the same bytes object: one encode
    assert [decode_span(data).context.span_id for _at, data in rows["b"]] == [2, 1]  # type: ignore[union-attr]
    assert store.spans == [{"a": [shared], "b": [own, shared]}]  # kept beside the rows, in row order
    assert (a.spooled, b.spooled) == (1, 2)


def test_one_commit_per_store_each_with_its_own_cap() -> None:
    telemetry, (spooled, local) = destinations("spooled", "local")
    spool, memory = RecordingStore(), MemoryStore()
    spooled.lane, local.lane = Lane(spool, 1 << 30), Lane(memory, 2)  # type: ignore[arg-type]
    writer = SpoolWriter(telemetry, logging.getLogger("test"), lambda _d: None)
    for i in (1, 2, 3):
        spooled.submit(make_span(i))
        local.submit(make_span(i))
    writer.notify(spooled)
    writer.notify(local)
    writer.drain()
    assert list(spool.commits[0]) == ["spooled"] and len(spool.commits) == 1
    kept = memory.read("local", 10)
    assert [r.span.context.span_id for r in kept] == [2, 3]  # type: ignore[union-attr]  # memory cap: 2 spans
    assert (local.dropped, local.stored_count) == ({"spool_full": 1}, 2)


def test_spans_arriving_within_the_commit_interval_share_one_transaction() -> None:
    telemetry, (dest,) = destinations("a")
    store = RecordingStore()
    dest.lane = Lane(store, 1 << 30)  # type: ignore[arg-type]
    stored = threading.Event()
    writer = SpoolWriter(telemetry, logging.getLogger("test"), lambda _d: stored.set(), commit_interval=0.5)
    dest._on_dirty = writer.notify  # type: ignore[attr-defined]  # as the manager wires it
    writer.start()
    try:
        for i in range(5):  # one submit every 20 ms: without the interval, each wakes its own commit
            dest.submit(make_span(i + 1))
            time.sleep(0.02)
        assert stored.wait(5.0)
    finally:
        writer.stop(2.0)
    assert [len(rows["a"]) for rows in store.commits] == [5]


def test_sync_does_not_wait_out_the_commit_interval() -> None:
    telemetry, (dest,) = destinations("a")
    store = RecordingStore()
    dest.lane = Lane(store, 1 << 30)  # type: ignore[arg-type]
    writer = SpoolWriter(telemetry, logging.getLogger("test"), lambda _d: None, commit_interval=30.0)
    dest._on_dirty = writer.notify  # type: ignore[attr-defined]
    writer.start()
    try:
        dest.submit(make_span(1))
        assert writer.sync(5.0)  # a flush (shutdown, force_flush) cuts the interval short
        assert [len(rows["a"]) for rows in store.commits] == [1]
    finally:
        writer.stop(2.0)
