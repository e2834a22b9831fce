"""Session-wide checks: the suite leaves no process behind."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.support.leaks import SESSION_ENV, leftovers

_GRACE = 15.0  # a worker that lost its supervisor stops gracefully: it notices within 0.5 s, then flushes


def pytest_sessionstart(session: pytest.Session) -> None:
    # Inherited by every process the suite starts, so the end of the session can find each one.
    os.environ[SESSION_ENV] = uuid.uuid4().hex


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    found = leftovers(os.environ[SESSION_ENV], _GRACE)
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"the test session left {len(found)} process(es) running (now killed):"]
        lines += [f"  [{pid}] {cmd}" for pid, cmd in sorted(found.items())]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
