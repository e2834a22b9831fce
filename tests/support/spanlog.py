"""Read the ``file`` destination's JSON lines, polling until the asynchronous delivery has written them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

POLL_INTERVAL = 0.02
SpanDict = dict[str, Any]


def read_spans(path: Path) -> list[SpanDict]:
    """Complete lines only: a line being appended right now is not yet a span."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")[:-1]
    return [json.loads(line) for line in lines if line.strip()]


def wait_for_spans(path: Path, count: int, timeout: float = 10.0,
                   where: Callable[[SpanDict], bool] | None = None) -> list[SpanDict]:
    """Poll until at least ``count`` (matching) spans are written; fail with what did arrive."""
    deadline = time.monotonic() + timeout
    while True:
        spans = [s for s in read_spans(path) if where is None or where(s)]
        if len(spans) >= count:
            return spans
        if time.monotonic() >= deadline:
            names = [s.get("name") for s in read_spans(path)]
            raise AssertionError(f"expected {count} spans in {path} within {timeout}s; got {names}")
        time.sleep(POLL_INTERVAL)


def only(spans: list[SpanDict], name: str | None = None) -> SpanDict:
    """The single span (named ``name``), or a failure that lists what there was."""
    chosen = [s for s in spans if name is None or s["name"] == name]
    assert len(chosen) == 1, f"expected one span named {name!r}; got {[s['name'] for s in spans]}"
    return chosen[0]
