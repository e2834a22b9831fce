"""Durability: kill -9 and restart, damaged spools, slots per process."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from processors.delivery.codec import decode_span, encode_span
from processors.delivery.spool import SqliteSpool
from tests.support.sinks import HttpSink, Reply

from .support import Ledger, ids_exporter, make_span, refused_url, wait_until

ROOT = Path(__file__).resolve().parents[3]
KEY = "team/a/sink"


def health(manager):
    return next(h for h in manager.health() if h.key == KEY)


def run_child_until_spooled(spool_dir: Path, url: str, at_least: int) -> int:
    """Start the child, kill -9 it once it reports ``at_least`` spooled; returns its last report."""
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("spool_child.py")), str(spool_dir), url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    spooled = 0
    try:
        for line in child.stdout:  # type: ignore[union-attr]
            spooled = int(line)
            if spooled >= at_least:
                child.send_signal(signal.SIGKILL)
                break
    finally:
        child.kill()
        child.wait(10)
        child.stdout.close()  # type: ignore[union-attr]
    return spooled


def test_kill_9_mid_load_then_restart_delivers_every_spooled_span(managers, tmp_path: Path) -> None:
    ledger = Ledger(lambda _ids: Reply(200, delay=0.05))  # slow enough for a backlog to build
    with HttpSink(ledger) as sink:
        spooled = run_child_until_spooled(tmp_path / "spool", sink.url, at_least=3000)
        delivered_by_child = len(ledger.accepted)
        ledger.script = lambda _ids: Reply(200)
        manager = managers(max_batch=100)
        manager.open(KEY, team="a", name="sink", factory=lambda: ids_exporter(sink.url))
        wait_until(lambda: set(range(1, spooled + 1)) <= set(ledger.accepted), timeout=20, what="redelivery")
    assert manager.slot == 0  # the dead child's slot was free again
    assert spooled >= 3000 and delivered_by_child < spooled
    duplicates = sum(n - 1 for n in Counter(ledger.accepted).values())
    assert duplicates <= 100  # at most the batch that was in flight at the kill


def test_garbage_spool_file_is_quarantined_and_start_up_carries_on(managers, tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    (spool_dir / "spool-0.db").write_bytes(b"this is not a database" * 500)
    ledger = Ledger()
    with HttpSink(ledger) as sink:
        manager = managers()
        manager.open(KEY, team="a", name="sink", factory=lambda: ids_exporter(sink.url)).submit(make_span(1))
        wait_until(lambda: health(manager).delivered == 1, what="delivery on a fresh spool")
    assert manager.spool_status()["quarantined_files"] == 1
    assert [p.name.split(".db")[0] for p in (spool_dir / "quarantine").iterdir()] == ["spool-0"]


def test_truncated_spool_keeps_what_can_be_read(managers, tmp_path: Path) -> None:
    first = managers(max_batch=10)
    dest = first.open(KEY, team="a", name="sink", factory=lambda: ids_exporter(refused_url()))
    for i in range(1, 3001):
        dest.submit(make_span(i, pad=200))
    wait_until(lambda: health(first).spooled == 3000, what="spooled")
    first.shutdown(0.1)
    db = tmp_path / "spool" / "spool-0.db"
    with db.open("r+b") as f:
        f.truncate(db.stat().st_size // 2)
    ledger = Ledger()
    with HttpSink(ledger) as sink:
        second = managers()
        status = second.spool_status()
        second.open(KEY, team="a", name="sink", factory=lambda: ids_exporter(sink.url))
        wait_until(lambda: health(second).queued == 0, what="salvaged spans delivered")
    assert status["quarantined_files"] == 1
    assert 0 < status["salvaged_records"] < 3000
    assert len(ledger.accepted) == len(set(ledger.accepted)) == health(second).delivered
    assert set(ledger.accepted) <= set(range(1, 3001))


def test_corrupt_record_is_quarantined_and_counted_the_rest_delivered(managers, tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    spool = SqliteSpool(spool_dir / "spool-0.db", logger=__import__("logging").getLogger("test"))
    rows = [(1.0, encode_span(make_span(1))), (1.0, b'{"n": "half a rec'), (1.0, encode_span(make_span(3)))]
    spool.commit({KEY: rows}, {})
    spool.close()
    ledger = Ledger()
    with HttpSink(ledger) as sink:
        manager = managers()
        manager.open(KEY, team="a", name="sink", factory=lambda: ids_exporter(sink.url))
        wait_until(lambda: health(manager).queued == 0, what="queue drained")
    assert sorted(ledger.accepted) == [1, 3]
    assert health(manager).dropped == {"corrupt": 1}
    with sqlite3.connect(spool_dir / "spool-0.db") as db:
        assert db.execute("SELECT dest, reason FROM quarantine").fetchall() == [(KEY, "corrupt")]


def test_each_live_process_claims_its_own_slot(managers) -> None:
    assert [managers().slot, managers().slot] == [0, 1]


def _spool(path: Path, cached: int) -> SqliteSpool:
    return SqliteSpool(path, logger=__import__("logging").getLogger("test"), cached_spans=cached)


def _committed(spool: SqliteSpool, spans: list, excess: int = 0) -> None:
    spool.commit({KEY: [(1.0, encode_span(s)) for s in spans]}, {KEY: excess}, {KEY: spans})


def test_spool_hands_out_the_submitted_spans_up_to_its_cache_size_then_bytes(tmp_path: Path) -> None:
    spool = _spool(tmp_path / "spool-0.db", cached=2)
    spans = [make_span(i) for i in (1, 2, 3)]
    _committed(spool, spans)
    records = spool.read(KEY, 10)
    assert [r.span is s for r, s in zip(records, spans, strict=True)] == [True, True, False]
    assert decode_span(records[2].data).context.span_id == 3  # type: ignore[arg-type, union-attr]
    spool.close()


def test_spans_dropped_at_the_cap_leave_the_cache_with_their_rows(tmp_path: Path) -> None:
    spool = _spool(tmp_path / "spool-0.db", cached=10)
    _committed(spool, [make_span(1)])
    assert [r.span.context.span_id for r in spool.read(KEY, 1)] == [1]  # type: ignore[union-attr]  # in flight
    _committed(spool, [make_span(2), make_span(3)])
    size = len(encode_span(make_span(4)))
    _committed(spool, [make_span(4)], excess=size)  # drop-oldest after the batch in flight: span 2
    records = spool.read(KEY, 10)
    assert [r.span.context.span_id for r in records] == [3, 4]  # type: ignore[union-attr]
    assert [decode_span(r.data).context.span_id for r in records] == [3, 4]  # type: ignore[arg-type, union-attr]
    spool.close()


def test_a_reopened_spool_has_only_bytes_and_the_sender_decodes_them(tmp_path: Path) -> None:
    spool = _spool(tmp_path / "spool-0.db", cached=10)
    _committed(spool, [make_span(1)])
    spool.close()
    again = _spool(tmp_path / "spool-0.db", cached=10)
    (record,) = again.read(KEY, 10)
    assert record.span is None and decode_span(record.data).context.span_id == 1  # type: ignore[arg-type, union-attr]
    again.close()


class _Keeper(SpanExporter):
    def __init__(self) -> None:
        self.got: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.got.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def test_a_live_process_exports_the_submitted_span_objects_not_decoded_copies(managers) -> None:
    manager, keeper = managers(), _Keeper()
    dest = manager.open(KEY, team="a", name="keeper", factory=lambda: keeper)
    spans = [make_span(i) for i in range(5)]
    for span in spans:
        dest.submit(span)
    wait_until(lambda: health(manager).delivered == 5, what="delivered")
    assert all(got is sent for got, sent in zip(keeper.got, spans, strict=True))


# -- reads from memory and deferred acknowledgements -------------------------------------------------
#
# A spool with copies must hand out exactly what a spool without copies (every read from disk,
# every span decoded) hands out, whatever the order of commits, reads, acks and caps; acknowledged
# rows stay on disk until the next transaction, so a crash before it sends them again.

_KEYS = ("team/a/sink", "team/b/sink")
_op = st.one_of(
    st.tuples(st.just("commit"), st.sampled_from(_KEYS), st.integers(1, 6), st.booleans(), st.integers(0, 2)),
    st.tuples(st.just("read"), st.sampled_from(_KEYS), st.integers(1, 4)),
    st.tuples(st.just("ack"), st.sampled_from(_KEYS)),
    st.tuples(st.just("flush")),
)


def _view(records: list) -> list[tuple[int, float, int, int]]:
    def span_id(r) -> int:  # the copy handed out, or the decoded bytes
        return (r.span if r.span is not None else decode_span(r.data)).context.span_id

    return [(r.id, r.at, r.size, span_id(r)) for r in records]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(_op, max_size=40), cache=st.integers(1, 5))
def test_copies_and_deferred_acks_hand_out_what_the_disk_holds(tmp_path_factory, ops, cache: int) -> None:
    base = tmp_path_factory.mktemp("spools")
    fast, plain = _spool(base / "fast.db", cached=cache), _spool(base / "plain.db", cached=0)
    size = len(encode_span(make_span(1)))
    in_flight: dict[str, list] = {}
    next_id = 1
    try:
        for op in ops:
            if op[0] == "commit":
                _, key, n, with_spans, dropped = op
                spans = [make_span(next_id + i) for i in range(n)]
                next_id += n
                rows = {key: [(float(s.context.span_id), encode_span(s)) for s in spans]}
                excess = {key: dropped * size}
                assert fast.commit(rows, excess, {key: spans} if with_spans else None) == plain.commit(rows, excess)
            elif op[0] == "read":
                _, key, limit = op
                if key in in_flight:
                    continue  # the sender reads a key again only after acknowledging its batch
                got, want = fast.read(key, limit), plain.read(key, limit)
                assert _view(got) == _view(want)
                if got:
                    in_flight[key] = got
            elif op[0] == "ack":
                records = in_flight.pop(op[1], [])
                fast.ack(op[1], records)
                plain.ack(op[1], records)
            else:
                fast.flush_acks()
                plain.flush_acks()
        fast.flush_acks()
        plain.flush_acks()
        for key in _KEYS:  # and what is left on disk is the same
            in_flight.pop(key, None)
            assert _view(fast.read(key, 1000)) == _view(plain.read(key, 1000))
    finally:
        fast.close()
        plain.close()


def _rows_on_disk(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT id FROM spans ORDER BY id")]


def test_acknowledged_rows_leave_the_disk_at_the_next_transaction_and_a_crash_before_resends_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spool-0.db"
    spool = _spool(path, cached=10)
    _committed(spool, [make_span(1), make_span(2)])
    batch = spool.read(KEY, 10)
    spool.ack(KEY, batch)
    assert _rows_on_disk(path) == [1, 2]  # not yet: no transaction of its own
    crashed = _spool(path, cached=10)  # another process opening the file now, as after kill -9
    assert [r.id for r in crashed.read(KEY, 10)] == [1, 2]  # at least once: sent again
    crashed.close()
    _committed(spool, [make_span(3)])  # the writer's next transaction deletes them
    assert _rows_on_disk(path) == [3]
    spool.ack(KEY, spool.read(KEY, 10))
    spool.flush_acks()  # or the writer's idle pass
    assert _rows_on_disk(path) == []
    spool.close()


def test_a_failed_commit_keeps_the_acknowledgements_and_no_copy_of_rows_it_rolled_back(tmp_path: Path) -> None:
    path = tmp_path / "spool-0.db"
    spool = _spool(path, cached=10)
    _committed(spool, [make_span(1), make_span(2)])
    spool.ack(KEY, spool.read(KEY, 10))
    with sqlite3.connect(path) as other:  # a trigger that fails the next insert
        other.execute("CREATE TRIGGER no_more BEFORE INSERT ON spans WHEN NEW.at = 3.0 "
                      "BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    try:
        spool.commit({KEY: [(3.0, encode_span(make_span(3)))]}, {}, {KEY: [make_span(3)]})
    except sqlite3.IntegrityError:
        pass
    else:
        raise AssertionError("the trigger did not fail the commit")
    assert spool.read(KEY, 10) == []  # no copy of the row that was rolled back
    assert _rows_on_disk(path) == [1, 2]  # the deletion was rolled back with the insert...
    spool.flush_acks()
    assert _rows_on_disk(path) == []  # ...and kept for the next transaction
    spool.close()
