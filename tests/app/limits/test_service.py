"""The Limiter on the in-process backend: exact counts under concurrency, windows that slide, budget
periods that reset, and a backend that fails open or closed."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.calls.limits import BudgetDuration, usd_to_nanos
from app.errors import BudgetExceeded, RateLimited, ServiceUnavailable
from app.limits.ledger import SpendLedger
from app.limits.memory import MemoryBackend
from app.limits.model import Check, Refusal
from app.limits.service import Limiter, Ticket
from app.store import SpendRow, Store
from tests.app.limits.conftest import KEY_HASH, START, Clock, key_limits, settle_call, spend_row, team_limits


async def admit_all(limiter: Limiter, limits: tuple, count: int) -> tuple[list[Ticket], list[Exception]]:
    results = await asyncio.gather(*(limiter.admit(f"r{i}", limits) for i in range(count)),
                                   return_exceptions=True)
    return ([r for r in results if isinstance(r, Ticket)], [r for r in results if isinstance(r, Exception)])


async def test_rpm_admits_exactly_the_limit_of_thirty_concurrent_calls(limiter: Limiter, clock: Clock) -> None:
    tickets, refused = await admit_all(limiter, (key_limits(rpm_limit=7),), 30)
    assert len(tickets) == 7 and len(refused) == 23
    error = refused[0]
    assert isinstance(error, RateLimited) and error.status == 429 and error.type == "throttling_error"
    assert error.retry_after == 60
    assert "Key=my-key" in error.message and "rpm limit: 7" in error.message and KEY_HASH not in error.message


async def test_the_rpm_window_slides(limiter: Limiter, clock: Clock) -> None:
    limits = (key_limits(rpm_limit=5),)
    for i in range(3):
        await limiter.admit(f"a{i}", limits)
    clock.now += 30
    for i in range(2):
        await limiter.admit(f"b{i}", limits)
    with pytest.raises(RateLimited) as first:
        await limiter.admit("c", limits)
    assert first.value.retry_after == 30  # the first three leave the window at START + 60
    clock.now = START + 60
    for i in range(3):
        await limiter.admit(f"d{i}", limits)
    with pytest.raises(RateLimited) as second:
        await limiter.admit("e", limits)
    assert second.value.retry_after == 30  # now the two of START + 30 are the oldest


async def test_a_budget_admits_floor_of_budget_over_cost(limiter: Limiter, store: Store) -> None:
    limits = (key_limits(max_budget=0.01),)
    cost = usd_to_nanos(0.002)
    admitted = 0
    with pytest.raises(BudgetExceeded) as refused:
        while True:
            ticket = await limiter.admit(f"r{admitted}", limits)
            admitted += 1
            await settle_call(limiter, ticket, cost)
    assert admitted == 5  # floor(0.01 / 0.002)
    error = refused.value
    assert error.message == "Budget has been exceeded! Key=my-key Current cost: 0.01, Max budget: 0.01"
    assert (error.status, error.type, error.retry_after) == (429, "budget_exceeded", None)
    await limiter.ledger.flush()
    assert await store.spend_total(token_hash=KEY_HASH) == (5, 5 * cost)


async def test_concurrent_calls_crossing_a_budget_overshoot_by_at_most_those_in_flight(limiter: Limiter) -> None:
    limits = (team_limits(max_budget=0.01),)
    cost = usd_to_nanos(0.004)
    tickets, _ = await admit_all(limiter, limits, 4)  # all four in flight before any settles
    assert len(tickets) == 4
    await asyncio.gather(*(settle_call(limiter, t, cost) for t in tickets))
    with pytest.raises(BudgetExceeded) as refused:
        await limiter.admit("late", limits)
    assert "Team=search-team Current cost: 0.016, Max budget: 0.01" in refused.value.message


async def test_a_budget_resets_when_its_period_ends(limiter: Limiter, clock: Clock) -> None:
    anchor = datetime.fromtimestamp(START, UTC)
    limits = (key_limits(max_budget=0.001, budget_duration=BudgetDuration.parse("30s"), budget_anchor=anchor),)
    clock.now = START + 12
    await settle_call(limiter, await limiter.admit("r1", limits), usd_to_nanos(0.001))
    with pytest.raises(BudgetExceeded) as refused:
        await limiter.admit("r2", limits)
    assert refused.value.retry_after == 18  # budget_reset_at is START + 30
    clock.now = START + 30
    ticket = await limiter.admit("r3", limits)
    assert ticket.checks[0].period == int(START + 30)


async def test_tpm_admits_while_the_window_is_below_the_limit(limiter: Limiter, clock: Clock) -> None:
    limits = (key_limits(tpm_limit=100),)
    await settle_call(limiter, await limiter.admit("r1", limits), 0, tokens=60)
    clock.now += 10
    await settle_call(limiter, await limiter.admit("r2", limits), 0, tokens=60)  # 60 < 100: admitted
    with pytest.raises(RateLimited) as refused:
        await limiter.admit("r3", limits)
    assert refused.value.retry_after == 50  # r1's tokens leave the window 60 s after they were counted
    assert "tpm limit: 100" in refused.value.message and "current tpm: 120" in refused.value.message
    clock.now += 50
    await limiter.admit("r4", limits)


async def test_max_parallel_admits_two_of_six(limiter: Limiter) -> None:
    limits = (key_limits(max_parallel_requests=2),)
    tickets, refused = await admit_all(limiter, limits, 6)
    assert len(tickets) == 2 and len(refused) == 4
    assert all(isinstance(e, RateLimited) and e.retry_after == 1 for e in refused)
    await limiter.release(tickets[0])
    await settle_call(limiter, tickets[1], 0)
    assert len((await admit_all(limiter, limits, 6))[0]) == 2


async def test_a_key_and_its_team_both_apply(limiter: Limiter) -> None:
    limits = (key_limits(rpm_limit=10), team_limits(rpm_limit=2))
    tickets, refused = await admit_all(limiter, limits, 5)
    assert len(tickets) == 2
    assert all("Team=search-team" in e.message for e in refused)


async def test_spend_already_in_the_store_counts(store: Store, tmp_path: Path, clock: Clock) -> None:
    await store.record_spend([spend_row("old", usd_to_nanos(0.01))])
    limiter = Limiter(MemoryBackend(store), SpendLedger(store, tmp_path / "spend"), clock=clock)
    await limiter.start()
    try:
        with pytest.raises(BudgetExceeded):
            await limiter.admit("new", (key_limits(max_budget=0.01),))
        assert (await limiter.admit("free", (key_limits(max_budget=0.02),))).request_id == "free"
    finally:
        await limiter.close()


class FlakyBackend(MemoryBackend):
    """The in-process backend behind a switch: while ``broken`` every call raises, or hangs."""

    name = "flaky"

    def __init__(self, store: Store, *, hang: bool = False) -> None:
        super().__init__(store)
        self.broken = True
        self.hang = hang

    async def _fail(self) -> None:
        if self.hang:
            await asyncio.Event().wait()
        raise ConnectionError("counter backend unreachable")

    async def admit(self, request_id: str, checks: tuple[Check, ...], now: float) -> Refusal | None:
        if self.broken:
            await self._fail()
        return await super().admit(request_id, checks, now)

    async def settle(self, request_id: str, checks: tuple[Check, ...], now: float, row: SpendRow) -> None:
        if self.broken:
            await self._fail()
        await super().settle(request_id, checks, now, row)

    async def healthy(self) -> bool:
        return not self.broken


async def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("hang", [False, True], ids=["raises", "hangs"])
async def test_fail_open_admits_logs_once_and_comes_back(store: Store, tmp_path: Path, clock: Clock,
                                                         caplog: pytest.LogCaptureFixture, hang: bool) -> None:
    backend = FlakyBackend(store, hang=hang)
    limiter = Limiter(backend, SpendLedger(store, tmp_path / "spend"), clock=clock, timeout=0.05,
                      probe_seconds=0.01)
    await limiter.start()
    limits = (key_limits(rpm_limit=1),)
    try:
        with caplog.at_level(logging.INFO, logger="spangate.limits"):
            tickets = [await limiter.admit(f"r{i}", limits) for i in range(3)]  # over the rpm: uncounted
            await asyncio.gather(*(settle_call(limiter, t, 5) for t in tickets))
            assert limiter.readiness()["healthy"] is False
            assert limiter.readiness()["backend_errors"] == 4  # one admit, three settles
            backend.broken = False
            await wait_until(lambda: limiter.readiness()["healthy"])
            await limiter.admit("after", limits)
            with pytest.raises(RateLimited):
                await limiter.admit("over", limits)
        records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "spangate.limits"]
        assert [level for level, _ in records] == ["WARNING", "INFO"]
        assert "pass without shared counting" in records[0][1]
        await limiter.ledger.flush()
        assert await store.spend_total(token_hash=KEY_HASH) == (3, 15)  # the journal has them all
    finally:
        await limiter.close()


async def test_fail_closed_refuses_with_503(store: Store, tmp_path: Path, clock: Clock) -> None:
    limiter = Limiter(FlakyBackend(store), SpendLedger(store, tmp_path / "spend"), fail_open=False, clock=clock,
                      probe_seconds=0.01)
    await limiter.start()
    try:
        for _ in range(2):
            with pytest.raises(ServiceUnavailable) as refused:
                await limiter.admit("r", (key_limits(rpm_limit=1),))
            assert (refused.value.status, refused.value.retry_after) == (503, 1)
        assert (await limiter.admit("no-limits", ())).checks == ()
        ready = limiter.readiness()
        assert (ready["backend"], ready["healthy"], ready["fail_open"]) == ("flaky", False, False)
    finally:
        await limiter.close()


async def test_a_soft_budget_is_reported_once_per_period(limiter: Limiter, caplog: pytest.LogCaptureFixture) -> None:
    limits = (key_limits(soft_budget=0.005),)
    with caplog.at_level(logging.WARNING, logger="spangate.limits"):
        for i in range(5):
            await settle_call(limiter, await limiter.admit(f"r{i}", limits), usd_to_nanos(0.002))
    warnings = [r.getMessage() for r in caplog.records if r.name == "spangate.limits"]
    assert len(warnings) == 1 and "key=my-key" in warnings[0] and KEY_HASH not in warnings[0]
