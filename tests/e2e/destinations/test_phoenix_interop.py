"""Arize Phoenix reads what Spangate exports: ``bench/phoenix_interop.py`` run whole, its report checked.

Behind the ``interop`` marker and deselected unless SPANGATE_INTEROP=1 (tests/conftest.py): it installs
``arize-phoenix`` into a venv of its own (``SPANGATE_PHOENIX_VENV``, default /tmp/phoenix-venv) when that
venv is missing, and Phoenix takes ~20 s to start.

    SPANGATE_INTEROP=1 .venv/bin/python -m pytest -q tests/e2e/destinations/test_phoenix_interop.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "bench" / "phoenix_interop.py"


@pytest.mark.interop
def test_phoenix_files_each_teams_calls_and_guardrails_in_the_teams_project(tmp_path: Path) -> None:
    venv = os.environ.get("SPANGATE_PHOENIX_VENV", "/tmp/phoenix-venv")
    run = subprocess.run([sys.executable, str(SCRIPT), "--venv", venv, "--work-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=900)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    lines = run.stdout.strip().splitlines()
    assert lines[-1].startswith("PASS: "), report
    assert not [line for line in lines if line.strip().startswith("FAIL")], report
