"""The limits' metrics, read back through the in-memory reader behind /metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.api.prometheus import render_prometheus
from app.calls.limits import usd_to_nanos
from app.errors import RateLimited
from app.limits.ledger import SpendLedger
from app.limits.memory import MemoryBackend
from app.limits.metrics import BACKEND_ERRORS, BUDGET_REMAINING, REFUSALS, SOFT_BUDGET_CROSSED, SPEND
from app.limits.service import Limiter
from app.store import Store
from tests.app.limits.conftest import KEY_HASH, Clock, key_limits, settle_call, spend_row, team_limits, values
from tests.app.limits.test_service import FlakyBackend


def attrs(**pairs: str) -> frozenset[tuple[str, Any]]:
    return frozenset(pairs.items())


async def test_spend_refusals_and_budget_remaining(limiter: Limiter, reader: Any) -> None:
    _, metrics = reader
    limits = (key_limits(max_budget=0.01, rpm_limit=2, soft_budget=0.002), team_limits(max_budget=1.0))
    for i in range(2):
        await settle_call(limiter, await limiter.admit(f"r{i}", limits), usd_to_nanos(0.003))
    with pytest.raises(RateLimited):
        await limiter.admit("r2", limits)
    limiter.record(spend_row("free", usd_to_nanos(0.5), key="b" * 64, team=None))
    spend = values(metrics, SPEND)
    assert spend[attrs(key="my-key", team="search-team")] == pytest.approx(0.006)
    assert spend[attrs(key="b" * 16)] == pytest.approx(0.5)  # a key with no limits: its short hash
    assert values(metrics, REFUSALS) == {attrs(key="my-key", team="search-team", reason="rpm"): 1}
    assert values(metrics, BUDGET_REMAINING) == {attrs(key="my-key"): pytest.approx(0.004),
                                                 attrs(team="search-team"): pytest.approx(0.994)}
    assert values(metrics, SOFT_BUDGET_CROSSED) == {attrs(key="my-key"): 1}
    text = render_prometheus(metrics.get_metrics_data())
    assert 'spangate_budget_remaining_usd{key="my-key"} 0.004' in text
    assert KEY_HASH not in text


async def test_key_labels_are_bounded(store: Store, tmp_path: Path, clock: Clock, reader: Any) -> None:
    provider, metrics = reader
    limiter = Limiter(MemoryBackend(store), SpendLedger(store, tmp_path / "spend"), clock=clock,
                      meter=provider.get_meter("t"), max_labels=2)
    await limiter.start()
    try:
        for i in range(5):
            limiter.record(spend_row(f"r{i}", 1_000_000_000, key=f"{i}" * 64, team=None))
    finally:
        await limiter.close()
    assert values(metrics, SPEND) == {attrs(key="0" * 16): 1.0, attrs(key="1" * 16): 1.0, attrs(key="other"): 3.0}


async def test_backend_errors_are_counted(store: Store, tmp_path: Path, clock: Clock, reader: Any) -> None:
    provider, metrics = reader
    limiter = Limiter(FlakyBackend(store), SpendLedger(store, tmp_path / "spend"), clock=clock,
                      meter=provider.get_meter("t"), probe_seconds=60)
    await limiter.start()
    try:
        ticket = await limiter.admit("r", (key_limits(rpm_limit=1),))
        await settle_call(limiter, ticket, 1)
    finally:
        await limiter.close()
    assert values(metrics, BACKEND_ERRORS) == {attrs(backend="flaky", operation="admit"): 1,
                                               attrs(backend="flaky", operation="settle"): 1}
