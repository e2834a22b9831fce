"""The real ``spangate`` CLI as a child process, for tests of what only a process shows (signals, workers)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


@contextmanager
def gateway_process(config: Path, port: int, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m app.cli`` on ``port`` until it answers /health/liveliness; killed on exit."""
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "--config", str(config), "--port", str(port), "--debug",
                             *extra],
                            cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/liveliness", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"gateway did not start: {proc.stdout.read().decode() if proc.stdout else ''}")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
