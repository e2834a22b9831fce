"""Per-destination durability: ``open(..., durable=False)`` queues in memory beside spooled ones."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.support.sinks import HttpSink

from .support import Ledger, ids_exporter, make_span, refused_url, wait_until

SPOOLED, LOCAL = "global/otel", "global/file"


def health(manager, key: str):
    return next(h for h in manager.health() if h.key == key)


def spooled_keys(spool_dir: Path) -> list[str]:
    with sqlite3.connect(spool_dir / "spool-0.db") as db:
        return sorted({k for (k,) in db.execute("SELECT key FROM destinations")})


def test_a_non_durable_destination_never_touches_the_spool_and_counts_the_same(managers, tmp_path: Path) -> None:
    spooled_ledger, local_ledger = Ledger(), Ledger()
    with HttpSink(spooled_ledger) as spooled_sink, HttpSink(local_ledger) as local_sink:
        manager = managers()
        spooled = manager.open(SPOOLED, team=None, name="otel", factory=lambda: ids_exporter(spooled_sink.url))
        local = manager.open(LOCAL, team=None, name="file", factory=lambda: ids_exporter(local_sink.url),
                             durable=False)
        for i in range(1, 51):
            spooled.submit(make_span(i))
            local.submit(make_span(i))
        wait_until(lambda: health(manager, SPOOLED).delivered == health(manager, LOCAL).delivered == 50,
                   what="both delivered")
    assert sorted(spooled_ledger.accepted) == sorted(local_ledger.accepted) == list(range(1, 51))
    assert health(manager, LOCAL).spooled == 50 and health(manager, LOCAL).queued == 0
    assert spooled_keys(tmp_path / "spool") == [SPOOLED]


def test_left_overs_in_the_spool_drain_from_it_when_reopened_non_durable(managers, tmp_path: Path) -> None:
    first = managers()
    first.open(LOCAL, team=None, name="file", factory=lambda: ids_exporter(refused_url())).submit(make_span(7))
    wait_until(lambda: health(first, LOCAL).failed >= 1, what="first attempt failed")
    first.shutdown(0.2)
    ledger = Ledger()
    with HttpSink(ledger) as sink:
        second = managers()
        dest = second.open(LOCAL, team=None, name="file", factory=lambda: ids_exporter(sink.url), durable=False)
        dest.submit(make_span(8))
        wait_until(lambda: health(second, LOCAL).delivered == 2, what="left-over and new span delivered")
    assert sorted(ledger.accepted) == [7, 8]


def test_a_memory_only_manager_ignores_durable_true_and_claims_no_slot(managers, tmp_path: Path) -> None:
    ledger = Ledger()
    with HttpSink(ledger) as sink:
        manager = managers(durable=False)
        manager.open(SPOOLED, team=None, name="otel", factory=lambda: ids_exporter(sink.url),
                     durable=True).submit(make_span(1))
        wait_until(lambda: health(manager, SPOOLED).delivered == 1, what="delivered")
    assert manager.slot is None and not (tmp_path / "spool" / "spool-0.db").exists()
