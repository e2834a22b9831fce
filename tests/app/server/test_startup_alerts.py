"""A failed start reported to Sentry before the process exits: the ``spangate`` CLI in a subprocess, the seed's
``database_url: "my-bad-url"`` example, and a loopback Sentry project as SENTRY_DSN."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from app.server.startup_alerts import TIMEOUT_SECONDS
from tests.support.sentry import SentryProject
from tests.support.upstream import closed_port

SPANGATE = str(Path(sys.executable).parent / "spangate")
SEED = {"model_list": [{"model_name": "gpt-3.5-turbo", "litellm_params": {"model": "gpt-3.5-turbo"}}],
        "litellm_settings": {"failure_callback": ["sentry"]},
        "general_settings": {"database_url": "my-bad-url"}}


def start(tmp_path: Path, config: dict[str, Any], dsn: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "SENTRY_DSN": dsn, "SENTRY_ENVIRONMENT": "boot"}
    return subprocess.run([SPANGATE, "--config", str(path), "--port", str(closed_port())], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=30, check=False)


def test_the_seed_example_is_one_fatal_event_before_exit(tmp_path: Path) -> None:
    with SentryProject() as project:
        result = start(tmp_path, SEED, project.dsn)
    assert result.returncode == 2
    line = result.stderr.strip()
    assert line.startswith("spangate: config error: general_settings.database_url: neither a database URL nor a file")
    assert not (tmp_path / "my-bad-url").exists()
    project.assert_wire_format()
    (event,) = project.events()
    assert event["exception"]["values"] == [{"type": "ConfigError", "value": line,
                                             "mechanism": {"type": "spangate", "handled": False}}]
    assert (event["level"], event["environment"], event["tags"]) == ("fatal", "boot", {"phase": "startup"})
    assert event["fingerprint"] == ["spangate", "startup", "ConfigError"]


def test_an_unreachable_store_is_reported_without_its_password(tmp_path: Path) -> None:
    config = {**SEED, "litellm_settings": {"callbacks": ["sentry"]},
              "general_settings": {"database_url": f"postgresql://gw:hunter2@127.0.0.1:{closed_port()}/gw"}}
    with SentryProject() as project:
        result = start(tmp_path, config, project.dsn)
    assert result.returncode == 3
    (event,) = project.events()
    (value,) = event["exception"]["values"]
    assert value["type"] == "StartupFailure" and value["value"] == result.stderr.strip()
    assert value["value"].startswith("spangate: store unavailable: postgresql://gw:***@127.0.0.1:")
    assert "hunter2" not in repr(event)


def test_a_sentry_that_is_down_costs_one_warning_not_the_exit(tmp_path: Path) -> None:
    started = time.monotonic()
    result = start(tmp_path, SEED, f"http://public@127.0.0.1:{closed_port()}/1")
    assert result.returncode == 2 and time.monotonic() - started < 10 + TIMEOUT_SECONDS
    assert "start-up failure not reported to sentry: connection refused" in result.stderr


def test_sentry_as_a_success_callback_only_is_not_alerted(tmp_path: Path) -> None:
    with SentryProject() as project:
        result = start(tmp_path, {**SEED, "litellm_settings": {"success_callback": ["sentry"]}}, project.dsn)
    assert result.returncode == 2
    assert project.requests == []
