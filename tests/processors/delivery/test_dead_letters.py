"""Dead letters after the fact: listed without content, replayed once each, swept by age and count.

Against real loopback sinks, counted by span id, on the durable spool and the memory lane.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind

from processors.delivery import DeliveryManager, decode_span, encode_span
from processors.delivery.config import Selection
from processors.delivery.destination import LagReservoir
from processors.delivery.spool import SqliteSpool
from tests.support.sinks import HttpSink, Reply

from .support import RESOURCE, Ledger, ids_exporter, make_span, wait_until

KEY = "team/a/sink/success"


def span_at(i: int, ended: float, model: str = "gpt-4o") -> ReadableSpan:
    """Span ``i`` that ended at unix time ``ended``, with a prompt (which no listing may show)."""
    end = int(ended * 1e9)
    return ReadableSpan(name="chat gpt-4o", context=SpanContext(0xFEED, i, is_remote=False), resource=RESOURCE,
                        kind=SpanKind.CLIENT, start_time=end - 1_000_000, end_time=end,
                        attributes={"i": f"{i:08d}", "gen_ai.request.model": model,
                                    "gen_ai.input.messages": '[{"role": "user", "parts": [{"content": "secret"}]}]'})


def health_of(manager: DeliveryManager):
    return next(h for h in manager.health() if h.key == KEY)


def sent_counts(ledger: Ledger) -> Counter[int]:
    with ledger.lock:
        return Counter(i for _, ids, status in ledger.attempts if status == 200 for i in ids)


class Gate:
    """A sink script: 401 (wrong credentials) until ``fix()``; ``status`` may change the refusal."""

    def __init__(self, status: int = 401) -> None:
        self.fixed = threading.Event()
        self.status = status

    def __call__(self, _ids: list[int]) -> Reply:
        return Reply(200) if self.fixed.is_set() else Reply(self.status, body=b'{"error": "key sk-lf-secret bad"}')


@pytest.mark.parametrize("durable", [True, False], ids=["spool", "memory"])
def test_replayed_dead_letters_arrive_once_and_leave_the_dead_letter_store(managers, durable: bool) -> None:
    gate = Gate()
    ledger = Ledger(gate)
    with HttpSink(ledger) as sink:
        manager = managers(durable=durable)
        dest = manager.open(KEY, team="a", name="sink", factory=lambda: ids_exporter(sink.url))
        now = time.time()
        for i in range(1, 6):
            dest.submit(span_at(i, now))
        wait_until(lambda: manager.dead_letter_count(KEY) == 5, what="five dead letters")
        letters = manager.dead_letters(KEY)
        gate.fixed.set()
        assert manager.replay(KEY) == 5
        wait_until(lambda: health_of(manager).delivered == 5, what="the replayed spans delivered")
        assert manager.replay(KEY) == 0  # nothing left to replay: a second replay sends nothing
    assert sent_counts(ledger) == Counter(range(1, 6))
    assert manager.dead_letter_count(KEY) == 0
    assert sorted(d.span_id for d in letters) == [1, 2, 3, 4, 5]
    letter = letters[0]
    assert (letter.trace_id, letter.model, letter.status, letter.reason) == (0xFEED, "gpt-4o", 401, "HTTP 401")
    assert letter.ended_at == pytest.approx(now, abs=1e-3)
    assert "secret" not in repr((letter.key, letter.span_id, letter.model, letter.reason))


def test_a_replayed_span_that_fails_again_is_dead_lettered_again_with_its_new_reason(managers) -> None:
    gate = Gate(401)
    ledger = Ledger(gate)
    with HttpSink(ledger) as sink:
        manager = managers()
        dest = manager.open(KEY, team="a", name="sink", factory=lambda: ids_exporter(sink.url))
        for i in range(1, 4):
            dest.submit(make_span(i))
        wait_until(lambda: manager.dead_letter_count(KEY) == 3, what="three dead letters")
        gate.status = 403
        assert manager.replay(KEY) == 3
        wait_until(lambda: {d.reason for d in manager.dead_letters(KEY)} == {"HTTP 403"}, what="the new reason")
        health = health_of(manager)
    assert manager.dead_letter_count(KEY) == 3
    assert (health.dead_lettered, health.delivered, health.last_status) == (6, 0, 403)
    assert health.last_failure_at is not None and health.last_failure_at <= time.time()


def test_replay_takes_only_the_chosen_span_ids_or_time_range(managers) -> None:
    gate = Gate()
    ledger = Ledger(gate)
    with HttpSink(ledger) as sink:
        manager = managers()
        dest = manager.open(KEY, team="a", name="sink", factory=lambda: ids_exporter(sink.url))
        for i in range(1, 7):
            dest.submit(span_at(i, 1_000_000.0 + i * 100))  # span i ended at 1,000,000 + 100 i
        wait_until(lambda: manager.dead_letter_count(KEY) == 6, what="six dead letters")
        gate.fixed.set()
        assert manager.replay(KEY, Selection(span_ids=frozenset({2, 5}))) == 2
        assert manager.replay(KEY, Selection(since=1_000_250.0, until=1_000_450.0)) == 2  # spans 3 and 4
        wait_until(lambda: health_of(manager).delivered == 4, what="four delivered")
    assert sent_counts(ledger) == Counter([2, 3, 4, 5])
    assert sorted(d.span_id for d in manager.dead_letters(KEY)) == [1, 6]


def dropped_points(reader: InMemoryMetricReader) -> dict[str, int]:
    return {p.attributes["reason"]: p.value
            for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics for m in sm.metrics
            if m.name == "spangate.delivery.dead_letters_dropped" for p in m.data.data_points}


def test_a_short_retention_drops_old_dead_letters_and_counts_them(managers, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="spangate.delivery")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    with HttpSink(Ledger(Gate())) as sink:
        manager = managers(meter=provider.get_meter("test"), dead_letter_retention=0.5)
        dest = manager.open(KEY, team="a", name="sink", factory=lambda: ids_exporter(sink.url))
        for i in range(1, 5):
            dest.submit(make_span(i))
        wait_until(lambda: health_of(manager).dead_lettered == 4, what="four dead-lettered")
        wait_until(lambda: manager.dead_letter_count(KEY) == 0, what="the sweep dropping them")
    assert dropped_points(reader) == {"expired": 4}
    lines = [r.getMessage() for r in caplog.records if "dropped by retention" in r.getMessage()]
    assert lines and "4 dropped" in lines[0]
    provider.shutdown()


def test_the_per_destination_bound_keeps_the_newest_dead_letters(managers) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    with HttpSink(Ledger(Gate())) as sink:
        manager = managers(meter=provider.get_meter("test"), dead_letters_per_destination=3)
        dest = manager.open(KEY, team="a", name="sink", factory=lambda: ids_exporter(sink.url))
        for i in range(1, 6):
            dest.submit(make_span(i))
        wait_until(lambda: health_of(manager).dead_lettered == 5, what="five dead-lettered")
        manager.sweeper.run_once()  # the background sweep runs each minute at the default retention
    assert sorted(d.span_id for d in manager.dead_letters(KEY)) == [3, 4, 5]
    assert dropped_points(reader) == {"over_limit": 2}
    provider.shutdown()


def test_delivery_lag_is_kept_per_destination(managers) -> None:
    with HttpSink(Ledger()) as sink:
        manager = managers()
        dest = manager.open(KEY, team="a", name="sink", factory=lambda: ids_exporter(sink.url))
        assert health_of(manager).lag_p50_ms is None  # nothing delivered yet
        ended = time.time()
        for i in range(1, 4):
            dest.submit(span_at(i, ended))
        wait_until(lambda: health_of(manager).delivered == 3, what="delivered")
        waited_ms = (time.time() - ended) * 1000
        health = health_of(manager)
    assert 0 <= health.lag_p50_ms <= health.lag_p99_ms <= waited_ms + 1


def test_the_lag_reservoir_keeps_the_last_deliveries_and_reads_nearest_rank_percentiles() -> None:
    lag = LagReservoir()
    for ms in range(1, 1001):  # only the last 128 (873..1000) are kept
        lag.add(float(ms))
    assert (lag.percentile(50), lag.percentile(99), lag.percentile(100)) == (936.0, 999.0, 1000.0)


def test_a_spool_written_before_the_ledger_is_migrated_and_its_dead_letters_replayed(tmp_path) -> None:
    """An older spool's dead_letters table has no reason column: opened, it gains one, keeps its rows."""
    path = tmp_path / "spool-0.db"
    with sqlite3.connect(path) as old:
        old.executescript("""
            CREATE TABLE spans (id INTEGER PRIMARY KEY AUTOINCREMENT, dest TEXT NOT NULL, at REAL NOT NULL,
                data BLOB NOT NULL);
            CREATE TABLE dead_letters (id INTEGER PRIMARY KEY, dest TEXT NOT NULL, at REAL NOT NULL,
                status INTEGER, detail TEXT NOT NULL, data BLOB NOT NULL);""")
        old.execute("INSERT INTO dead_letters (dest, at, status, detail, data) VALUES (?, ?, ?, ?, ?)",
                    (KEY, 10.0, 401, "HTTP 401: no", encode_span(span_at(7, 5.0))))
    spool = SqliteSpool(path, logging.getLogger("test"))
    try:
        [letter] = spool.dead_letters(KEY)
        moved = spool.replay(KEY, Selection())
        [record] = spool.read(KEY, 10)
    finally:
        spool.close()
    assert (letter.span_id, letter.status, letter.reason, letter.ended_at, letter.model) == (7, 401, "", 5.0, "gpt-4o")
    assert moved[0] == 1 and decode_span(record.data).context.span_id == 7
