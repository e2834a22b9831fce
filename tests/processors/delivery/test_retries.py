"""Retry policy against real loopback sinks, counted by span id."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from processors.delivery import DeliveryManager
from tests.support.sinks import HttpSink, Reply

from .support import IdsSpanExporter, Ledger, ids_exporter, make_span, refused_url, wait_until


def submit_all(dest, ids) -> None:
    for i in ids:
        dest.submit(make_span(i))


def refusals(ledger: Ledger) -> int:
    with ledger.lock:
        return sum(status == 503 for _, _, status in ledger.attempts)


def health_of(manager: DeliveryManager, key: str):
    return next(h for h in manager.health() if h.key == key)


def test_503_for_a_while_then_recovery_loses_nothing_and_duplicates_nothing(managers) -> None:
    recovered = threading.Event()
    ledger = Ledger(lambda _ids: Reply(200) if recovered.is_set() else Reply(503))
    with HttpSink(ledger) as sink:
        manager = managers(max_batch=50)
        dest = manager.open("team/a/sink", team="a", name="sink", factory=lambda: ids_exporter(sink.url))
        for start in (1, 201, 401):  # spans keep arriving during the outage: each lot after a refusal
            refused = refusals(ledger)
            submit_all(dest, range(start, start + 200))
            wait_until(lambda r=refused: refusals(ledger) > r, what="a 503 after the lot was submitted")
        recovered.set()
        wait_until(lambda: health_of(manager, "team/a/sink").delivered >= 600, timeout=15, what="delivered")
        health = health_of(manager, "team/a/sink")
    assert sorted(ledger.accepted) == list(range(1, 601))
    assert any(status == 503 for _, _, status in ledger.attempts)
    assert (health.delivered, health.queued, health.dead_lettered, health.dropped) == (600, 0, 0, {})
    assert health.retried == health.failed > 0
    assert health.last_error.startswith("HTTP 503")


def test_429_retry_after_is_waited_out(managers) -> None:
    replies = iter([Reply(429, headers={"Retry-After": "1"})])
    ledger = Ledger(lambda _ids: next(replies, Reply(200)))
    with HttpSink(ledger) as sink:
        manager = managers(initial_backoff=0.01, max_backoff=0.02)  # jitter alone would retry at once
        dest = manager.open("team/a/sink", team="a", name="sink", factory=lambda: ids_exporter(sink.url))
        submit_all(dest, [1, 2, 3])
        wait_until(lambda: health_of(manager, "team/a/sink").delivered == 3, what="delivery after Retry-After")
    (first, _, status), (second, ids, _) = ledger.attempts[:2]
    assert status == 429
    assert second - first >= 1.0
    assert ids == [1, 2, 3]


def test_connection_refused_backs_off_instead_of_spinning(managers) -> None:
    made: list[IdsSpanExporter] = []

    def factory() -> IdsSpanExporter:
        made.append(ids_exporter(refused_url()))
        return made[-1]

    manager = managers(initial_backoff=0.05, max_backoff=0.4)
    manager.open("global/down", team=None, name="down", factory=factory).submit(make_span(1))
    time.sleep(2.0)  # not an ordering: the window the attempts are counted in (the bound is a rate)
    seen: list[tuple[int, Any]] = []

    def between_attempts() -> bool:  # read counters while no attempt is in flight, or they race it
        seen.append((made[0].attempts, health_of(manager, "global/down")))
        return seen[-1][1].state == "backoff" and seen[-1][1].failed == seen[-1][0]

    wait_until(between_attempts, timeout=5, what="a moment between two attempts")
    attempts, health = seen[-1]
    # A hot loop makes thousands of attempts in 2 s; the backoff allows about a dozen.
    assert 3 <= attempts <= 45
    assert health.failed == health.retried == attempts
    assert (health.queued, health.delivered, health.state) == (1, 0, "backoff")
    assert health.last_error == "connection refused"  # the short reason, not the exception text


def test_413_splits_the_batch_and_dead_letters_a_single_span_still_too_large(managers) -> None:
    huge = 7

    def script(ids: list[int]) -> Reply:
        return Reply(413, body=b"too big") if len(ids) > 4 or huge in ids else Reply(200)

    ledger = Ledger(script)
    with HttpSink(ledger) as sink:
        manager = managers(max_batch=20, batch_delay=0.3)
        dest = manager.open("team/a/sink", team="a", name="sink", factory=lambda: ids_exporter(sink.url))
        submit_all(dest, range(1, 21))
        wait_until(lambda: health_of(manager, "team/a/sink").queued == 0, what="queue drained")
    health = health_of(manager, "team/a/sink")
    assert sorted(ledger.accepted) == [i for i in range(1, 21) if i != huge]
    assert (health.delivered, health.dead_lettered) == (19, 1)
    assert max(len(ids) for _, ids, status in ledger.attempts if status == 200) <= 4
    [letter] = manager.dead_letters("team/a/sink")
    assert (letter.span_id, letter.status) == (huge, 413)


def test_permanent_4xx_is_dead_lettered_with_status_and_excerpt_and_not_retried(managers) -> None:
    ledger = Ledger(lambda _ids: Reply(401, body=b'{"error": "invalid api key"}'))
    with HttpSink(ledger) as sink:
        manager = managers()
        dest = manager.open("team/a/sink", team="a", name="sink", factory=lambda: ids_exporter(sink.url))
        submit_all(dest, range(1, 6))
        wait_until(lambda: health_of(manager, "team/a/sink").dead_lettered == 5, what="dead letters")
    health = health_of(manager, "team/a/sink")
    sent = Counter(i for _, ids, _ in ledger.attempts for i in ids)
    assert sent == Counter(range(1, 6))  # each span sent exactly once
    assert (health.retried, health.queued, health.delivered) == (0, 0, 0)
    letters = manager.dead_letters("team/a/sink")
    assert sorted(d.span_id for d in letters) == [1, 2, 3, 4, 5]
    assert {d.status for d in letters} == {401}
    assert "invalid api key" in letters[0].detail


def test_an_exporter_that_raises_something_unknown_is_retried_and_logged_not_dead_lettered(managers, caplog) -> None:
    class FlakyClientError(Exception):
        """What a client library might raise that no destination mapping knows."""

    ledger = Ledger(lambda _ids: Reply(200))
    with HttpSink(ledger) as sink:
        real = ids_exporter(sink.url)
        calls = {"n": 0}

        class Flaky(IdsSpanExporter):
            def export(self, spans):  # type: ignore[no-untyped-def]
                calls["n"] += 1
                if calls["n"] <= 2:
                    raise FlakyClientError("socket wrapper gave up")
                return real.export(spans)

        manager = managers(initial_backoff=0.01, max_backoff=0.02)
        dest = manager.open("team/a/sink", team="a", name="sink", factory=lambda: Flaky(real._client, sink.url))
        submit_all(dest, [1, 2, 3])
        wait_until(lambda: health_of(manager, "team/a/sink").delivered == 3, what="delivery after two raises")
        health = health_of(manager, "team/a/sink")
    assert (health.dead_lettered, health.retried) == (0, 6)
    assert sorted(ledger.accepted) == [1, 2, 3]
    assert sum("raised FlakyClientError" in r.getMessage() for r in caplog.records) == 2


def test_exporters_are_built_lazily_on_a_delivery_thread_and_a_failing_build_is_retried(managers, caplog) -> None:
    built_on: list[str] = []
    builds = {"n": 0}
    ledger = Ledger(lambda _ids: Reply(200))
    with HttpSink(ledger) as sink:
        def factory() -> IdsSpanExporter:
            builds["n"] += 1
            built_on.append(threading.current_thread().name)
            if builds["n"] == 1:
                raise RuntimeError("credential chain not ready")
            return ids_exporter(sink.url)

        manager = managers(initial_backoff=0.01, max_backoff=0.02)
        idle = manager.open("team/b/idle", team="b", name="sink", factory=lambda: factory())
        dest = manager.open("team/a/sink", team="a", name="sink", factory=factory)
        assert builds["n"] == 0  # open() builds nothing: a table swap on the event loop stays cheap
        submit_all(dest, [1, 2])
        wait_until(lambda: health_of(manager, "team/a/sink").delivered == 2, what="delivery after a failed build")
    assert builds["n"] == 2 and threading.current_thread().name not in built_on
    assert health_of(manager, "team/a/sink").dead_lettered == 0
    assert idle is not None and any("building its exporter failed" in r.getMessage() for r in caplog.records)
