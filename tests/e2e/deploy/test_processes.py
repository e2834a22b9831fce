"""The gateway as an operator's process: where it cannot listen, what happens when its supervisor
dies, how ``./scripts/start`` restarts, and a suite that leaves no process behind."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.deploy.test_cli import MOCK_ONLY, _children, spangate
from tests.e2e.destinations.test_delivery_status_e2e import ONE_FORMAT
from tests.support.leaks import SESSION_ENV
from tests.support.process import OutputLines, gateway_process
from tests.support.upstream import closed_port

ROOT = Path(__file__).resolve().parents[3]


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still running (not zombies) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [pid for pid in pids if _running(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)  # another process's exit: polled, with a deadline


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_one_line_naming_the_address_and_nothing_is_announced(workers: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = spangate("--port", str(port), "--num_workers", workers)
    assert result.returncode == 3
    assert result.stderr == f"spangate: cannot listen on http://127.0.0.1:{port}: Address already in use\n"
    assert result.stdout == ""


def test_workers_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**MOCK_ONLY, "spangate_settings": {"data_dir": str(tmp_path / "data")}}))
    port = closed_port()
    with gateway_process(config, port, "--num_workers", "2") as proc:
        out = OutputLines(proc)
        workers = [pid for pid in _children(proc.pid) if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(workers) == 2, workers
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        still = _wait_gone(workers, timeout=15)
        lines = out.close()
    assert still == [], f"workers {still} outlived their supervisor"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/health/liveliness", timeout=2)
    gone = [line for line in lines if "supervisor process" in line]
    assert len(gone) == 2 and all(f"[{proc.pid}] is gone; worker [" in line for line in gone), lines
    logged = [line for line in lines if line.strip()]
    assert all(ONE_FORMAT.match(line) for line in logged), "\n".join(logged)  # workers' lines too


def test_a_session_that_leaves_a_process_behind_fails_and_names_it(tmp_path: Path) -> None:
    leaky = ROOT / "tests" / "support" / "leaky_session.py"
    pid_file = tmp_path / "pid"
    result = subprocess.run([sys.executable, "-m", "pytest", str(leaky), "-q", "-p", "no:cacheprovider"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "LEAKY_PID_FILE": str(pid_file)})
    pid = int(pid_file.read_text())
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the test session left 1 process(es) running (now killed):" in result.stdout
    assert f"[{pid}] sleep 300" in result.stdout
    assert _wait_gone([pid], timeout=5) == []


def test_the_leak_marker_reaches_the_processes_a_test_starts() -> None:
    marker = os.environ[SESSION_ENV]
    out = subprocess.run(["sh", "-c", f"echo ${SESSION_ENV}"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == marker


def _fake_project(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of scripts/start beside a .venv whose python records pip runs and whose spangate echoes."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "start", project / "scripts" / "start")
    (project / "pyproject.toml").write_text('[project]\nname = "spangate"\n')
    bin_dir = project / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    pip_log = tmp_path / "pip.log"
    (bin_dir / "python").write_text(f'#!/bin/sh\nif [ "$1" = "-m" ]; then echo "$*" >> {pip_log}; exit 0; fi\n'
                                    f'exec {sys.executable} "$@"\n')
    (bin_dir / "spangate").write_text('#!/bin/sh\necho "spangate $*"\n')
    for exe in (bin_dir / "python", bin_dir / "spangate"):
        exe.chmod(0o755)
    return project, pip_log


def test_scripts_start_installs_only_when_pyproject_changed(tmp_path: Path) -> None:
    project, pip_log = _fake_project(tmp_path)

    def start() -> str:
        run = subprocess.run(["bash", str(project / "scripts" / "start"), "--port", "4001"], capture_output=True,
                             text=True, timeout=30, check=True)
        return run.stdout

    assert start() == "spangate --port 4001\n"
    assert start() == "spangate --port 4001\n"
    assert pip_log.read_text().splitlines() == ["-m pip install --quiet --disable-pip-version-check -e ."]
    (project / "pyproject.toml").write_text('[project]\nname = "spangate"\ndependencies = ["httpx"]\n')
    start()
    assert len(pip_log.read_text().splitlines()) == 2


def test_the_span_log_exists_as_soon_as_the_gateway_listens(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**MOCK_ONLY, "spangate_settings": {"data_dir": str(data)}}))
    with gateway_process(config, closed_port()):
        assert (data / "spans.jsonl").is_file()  # before any call: `tail` of it works at once
