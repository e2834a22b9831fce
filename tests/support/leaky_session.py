"""Run alone by test_processes: a test that starts a process and forgets it (the session must fail)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def test_forgets_a_process() -> None:
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
    Path(os.environ["LEAKY_PID_FILE"]).write_text(str(proc.pid))
