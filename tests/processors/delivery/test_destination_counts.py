"""A destination's outcome counters: each outcome adds to its own counter, and nothing else can be counted."""

from __future__ import annotations

import logging

import pytest

from processors.delivery.destination import Destination
from processors.delivery.reporting import Telemetry


def destination() -> Destination:
    telemetry = Telemetry(None, logging.getLogger("spangate.delivery.test-counts"), list, 10.0)
    return Destination("team/t1/sink/success", "t1", "sink", buffer_size=10, telemetry=telemetry,
                       on_dirty=lambda _d: None)


def test_each_outcome_adds_to_its_own_counter() -> None:
    dest = destination()
    for n, outcome in enumerate(("delivered", "retried", "failed", "dead_lettered"), start=1):
        dest.count(outcome, n)
    assert (dest.delivered, dest.retried, dest.failed, dest.dead_lettered) == (1, 2, 3, 4)


def test_a_name_that_is_no_outcome_is_refused_and_writes_nothing() -> None:
    dest = destination()
    with pytest.raises(ValueError, match="not a delivery outcome"):
        dest.count("failures", 5)  # an attribute of the destination, but not an outcome
    assert dest.failures == 0
