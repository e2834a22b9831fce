from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from opentelemetry.metrics import Meter

from processors.delivery import DeliveryConfig, DeliveryManager


def fast_config(spool_dir: Path, **overrides: object) -> DeliveryConfig:
    """Timeouts and backoffs scaled down so fault scenarios play out in about a second."""
    config = DeliveryConfig(
        spool_dir=spool_dir,
        batch_delay=0.02,
        initial_backoff=0.05,
        max_backoff=0.5,
        export_timeout=1.0,
        stall_after=0.3,
        workers=4,
        probation_workers=1,
        shutdown_flush_timeout=1.0,
    )
    return replace(config, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def managers(tmp_path: Path) -> Iterator[Callable[..., DeliveryManager]]:
    """Build started managers on ``tmp_path/spool``; every one is shut down after the test."""
    started: list[DeliveryManager] = []

    def build(meter: Meter | None = None, **overrides: object) -> DeliveryManager:
        manager = DeliveryManager(fast_config(tmp_path / "spool", **overrides), meter=meter)
        manager.start()
        started.append(manager)
        return manager

    yield build
    for manager in started:
        manager.shutdown(0.2)
