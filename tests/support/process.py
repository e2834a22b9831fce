"""The real ``spangate`` CLI as a child process, for tests of what only a process shows (signals, workers)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx


@contextmanager
def gateway_process(config: Path, port: int, *extra: str, output: IO[bytes] | None = None,
                    debug: bool = True) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m app.cli`` on ``port`` until it answers /health/liveliness; killed on exit. Its output
    goes to a pipe for the test to read, or to ``output``: a load must not run into a pipe nobody
    reads (--debug's access lines fill it and stall the gateway after a few thousand calls)."""
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "--config", str(config), "--port", str(port),
                             *(["--debug"] if debug else []), *extra],
                            cwd=Path(__file__).resolve().parents[2],
                            stdout=subprocess.PIPE if output is None else output,
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


class OutputLines:
    """A child's merged output read line by line on a thread, so a test can wait for a line with a deadline.

    It reads its own duplicate of the pipe with ``os.read``: closing the child's buffered ``stdout`` while a
    thread blocks in its ``read`` would wait on that read, for ever if a leaked grandchild holds the pipe.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._done = False
        self._thread = threading.Thread(target=self._read, args=(os.dup(proc.stdout.fileno()),), daemon=True)
        self._thread.start()

    def _read(self, fd: int) -> None:
        pending = b""
        try:
            while chunk := os.read(fd, 65536):
                *complete, pending = (pending + chunk).split(b"\n")
                with self._changed:
                    self.lines.extend(line.decode(errors="replace") for line in complete)
                    self._changed.notify_all()
        finally:
            os.close(fd)
            with self._changed:
                if pending:
                    self.lines.append(pending.decode(errors="replace"))
                self._done = True
                self._changed.notify_all()

    def wait_for(self, needle: str, timeout: float = 20.0) -> str:
        """The first line containing ``needle``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((line for line in self.lines if needle in line), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self._done:
                    raise AssertionError(f"no line with {needle!r} in:\n" + "\n".join(self.lines))
                self._changed.wait(left)

    def close(self, timeout: float = 10.0) -> list[str]:
        """Every line, once the child closed its output."""
        self._thread.join(timeout)
        with self._changed:
            return list(self.lines)
