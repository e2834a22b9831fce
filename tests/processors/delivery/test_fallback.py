"""``FallbackSpool``: a real ``SqliteSpool`` whose writes fail as on a full disk (SQLite's own
``SQLITE_FULL``, from ``PRAGMA max_page_count``), a hand-driven clock for the retries."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from processors.delivery.codec import encode_span
from processors.delivery.fallback import FallbackSpool
from processors.delivery.spool import SqliteSpool

from .support import make_span

KEY = "team/a/sink"
PAD = 3000  # a row needs a page of its own: a full file takes none


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def open_spool(tmp_path: Path, clock: Clock, bound: int = 100) -> tuple[FallbackSpool, SqliteSpool]:
    inner = SqliteSpool(tmp_path / "spool-0.db", logging.getLogger("spangate.delivery"), cached_spans=16)
    return FallbackSpool(inner, logging.getLogger("spangate.delivery"), held_per_destination=bound,
                         log_interval=60.0, retry_interval=1.0, clock=clock), inner


def set_full(inner: SqliteSpool, full: bool) -> None:
    pages = inner._db.execute("PRAGMA page_count").fetchone()[0]
    inner._db.execute(f"PRAGMA max_page_count = {pages if full else 1 << 30}")


def commit(store: FallbackSpool, *ids: int) -> dict[str, tuple[int, int]]:
    spans = [make_span(i, pad=PAD) for i in ids]
    return store.commit({KEY: [(float(i), encode_span(s)) for i, s in zip(ids, spans, strict=True)]}, {},
                        {KEY: spans})


def span_ids(records: list) -> list[int]:
    return [r.span.context.span_id for r in records]


def test_refused_rows_are_held_beyond_the_bound_oldest_dropped_and_sent_like_spooled(tmp_path: Path,
                                                                                      clock: Clock) -> None:
    store, inner = open_spool(tmp_path, clock, bound=3)
    assert commit(store, 1) == {}
    set_full(inner, True)
    drops = [commit(store, i) for i in range(2, 7)]
    assert [d.get(KEY, (0, 0))[0] for d in drops] == [0, 0, 0, 1, 1]  # the cap that was hit: counted by the writer
    health = store.health()
    assert (health.state, health.held_in_memory, health.dropped) == ("failing", 3, 2)
    assert health.reason == "OperationalError: database or disk is full"
    batch = store.read(KEY, 10)
    assert span_ids(batch) == [1, 4, 5, 6]  # the spooled one first, then the held ones in order
    store.ack(KEY, batch)
    assert store.health().held_in_memory == 0
    store.close()


def test_when_space_returns_the_held_rows_are_spooled_in_order(tmp_path: Path, clock: Clock,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "spangate.delivery")
    store, inner = open_spool(tmp_path, clock)
    set_full(inner, True)
    commit(store, 1, 2)
    commit(store, 3)  # not due for a retry: straight to memory, the disk is not asked
    set_full(inner, False)
    store.flush_acks()
    assert store.health().state == "failing"  # within the retry interval
    clock.now += 1.0
    store.flush_acks()  # the writer's idle pass: due, so the held rows are written
    assert (store.health().state, store.health().held_in_memory) == ("ok", 0)
    assert inner._db.execute("SELECT COUNT(*) FROM spans").fetchone()[0] == 3
    batch = store.read(KEY, 10)
    assert span_ids(batch) == [1, 2, 3] and all(r.id > 0 for r in batch)
    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(":")[0] for m in messages] == [f"spool {inner.path}", "spool"]
    assert "writes work again after 1s: 3 held spans written to the spool, 0 dropped" in messages[1]
    assert not [r for r in caplog.records if r.exc_info]
    store.close()


def test_a_flapping_disk_is_announced_once_per_log_interval(tmp_path: Path, clock: Clock,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "spangate.delivery")
    store, inner = open_spool(tmp_path, clock)
    for _ in range(3):
        set_full(inner, True)
        commit(store, 1)
        set_full(inner, False)
        clock.now += 1.0
        commit(store, 2)
        assert store.health().state == "ok"
    assert sum("writes failing" in r.getMessage() for r in caplog.records) == 1
    assert sum("writes work again" in r.getMessage() for r in caplog.records) == 1
    store.close()


def test_a_held_span_refused_by_the_destination_is_kept_as_a_dead_letter(tmp_path: Path, clock: Clock) -> None:
    store, inner = open_spool(tmp_path, clock)
    set_full(inner, True)
    commit(store, 7)
    batch = store.read(KEY, 10)
    store.dead_letter(KEY, batch, 400, "HTTP 400: bad event")
    [letter] = store.dead_letters(KEY)
    assert (letter.span_id, letter.status) == (7, 400)
    assert store.health().held_in_memory == 0
    store.close()
