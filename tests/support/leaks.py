"""Processes a test session leaves behind, found by a marker in their environment.

Children of the session are not enough: a worker whose supervisor was killed is re-parented away
from pytest. Every process the suite starts inherits ``SESSION_ENV`` (subprocesses copy the
environment), so ``/proc/<pid>/environ`` names them wherever they went, and only them: other
suites running on the same machine carry another marker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

SESSION_ENV = "SPANGATE_TEST_SESSION"


def marked(marker: str) -> dict[int, str]:
    """pid -> command line of every live process (this one excepted) carrying ``marker``."""
    needle = f"{SESSION_ENV}={marker}".encode() + b"\0"
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        pid = int(proc.name)
        if pid == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (proc / "environ").read_bytes() + b"\0" and not _zombie(proc):
                found[pid] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    return found


def _zombie(proc: Path) -> bool:
    return (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def leftovers(marker: str, grace: float) -> dict[int, str]:
    """What still runs after ``grace`` seconds (workers stopping gracefully get that long); then killed."""
    deadline = time.monotonic() + grace
    while (found := marked(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)  # polling other processes' exit: there is no event to wait on
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return found
