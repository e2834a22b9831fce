"""StatusLog on a hand-driven clock: one line per state change, the reminder at most once per interval."""

from __future__ import annotations

import logging

import pytest

from contracts.failures import ExportFailure, failure_from_status
from processors.delivery.destination import Destination
from processors.delivery.reporting import StatusLog, Telemetry

REFUSED = ExportFailure(retryable=True, detail="ConnectError: [Errno 111] Connection refused",
                        reason="export failed (ConnectError)")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(caplog: pytest.LogCaptureFixture) -> tuple[StatusLog, Destination, Clock, pytest.LogCaptureFixture]:
    log = logging.getLogger("spangate.delivery.test-status")
    caplog.set_level(logging.INFO, logger=log.name)
    dest = Destination("team/t1/langfuse/success", "t1", "langfuse", buffer_size=10,
                       telemetry=Telemetry(None, log, list, 10.0), on_dirty=lambda _d: None)
    clock = Clock()
    return StatusLog(log, interval=300.0, clock=clock), dest, clock, caplog


def test_failing_still_failing_and_recovered_are_one_line_each(setup) -> None:
    status, dest, clock, caplog = setup
    dest.stored(4, 400)
    for _ in range(5):  # attempts within the first interval: only the first one is logged
        dest.count("retried", 4)
        status.failed(dest, REFUSED)
        clock.now += 50
    clock.now += 60  # 310 s after the first failure
    dest.count("retried", 4)
    status.failed(dest, REFUSED)
    clock.now += 3600
    dest.count("delivered", 4)
    dest.stored(-4, -400)
    status.delivered(dest)
    status.delivered(dest)  # healthy again: nothing more to say
    assert [r.getMessage() for r in caplog.records] == [
        "destination team/t1/langfuse/success: failing: export failed (ConnectError); 4 spans queued, retried "
        "with backoff",
        "destination team/t1/langfuse/success: still failing after 5m10s: export failed (ConnectError); queued=4 "
        "retried=20 dead_lettered=0 (6 attempts)",
        "destination team/t1/langfuse/success: recovered after 1h05m down: 4 spans caught up, 0 still queued, "
        "0 dead-lettered meanwhile",
    ]
    assert [r.levelname for r in caplog.records] == ["WARNING", "WARNING", "INFO"]


def test_the_line_carries_the_short_reason_never_the_destinations_body(setup) -> None:
    status, dest, _clock, caplog = setup
    failure = failure_from_status(401, '{"message": "internal page: secret-admin-token"}')
    assert failure is not None
    status.failed(dest, failure)
    assert caplog.records[0].getMessage().endswith(": failing: HTTP 401; 0 spans queued, refused spans are "
                                                      "dead-lettered")
