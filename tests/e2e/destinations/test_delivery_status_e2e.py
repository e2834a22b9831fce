"""What cannot be delivered shows in the gateway's log, in its one format, not only in /health/destinations.

The real ``spangate`` process with a team whose Langfuse project answers 503, then 200, then 503 again
while the gateway stops: one line when the destination starts failing, a reminder while it stays down,
one when it recovers (with what was caught up), and shutdown says what it waits for and for how long.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import yaml

from tests.e2e.destinations.test_delivery_e2e import MASTER, Project, _chat, _free_port, _setup_team
from tests.support.otlp import OtlpSink
from tests.support.process import OutputLines, gateway_process

ONE_FORMAT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: \S")


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "model_list": [{"model_name": "gpt-4", "litellm_params": {"model": "mock/gpt-4"}}],
        "general_settings": {"master_key": MASTER},
        "spangate_settings": {"data_dir": str(tmp_path / "data"), "shutdown_flush_seconds": 2,
                              "team_poll_seconds": 0.2, "delivery_failing_log_seconds": 0.5},
    }))
    return path


def test_a_failing_destination_logs_failing_still_failing_recovered_and_the_shutdown_wait(tmp_path: Path) -> None:
    port, state = _free_port(), Project()
    base = f"http://127.0.0.1:{port}"
    with OtlpSink(state.respond) as project, gateway_process(_config(tmp_path), port) as proc:
        out = OutputLines(proc)
        key = _setup_team(base, project.url)
        _chat(base, key, 3)
        failing = out.wait_for(": failing: ")
        still = out.wait_for(": still failing after ")
        state.up = True
        recovered = out.wait_for(": recovered after ")
        state.up = False
        _chat(base, key, 2)
        proc.send_signal(signal.SIGTERM)
        waiting = out.wait_for("shutdown: waiting up to ")
        left = out.wait_for("shutdown: 2 spans not delivered within 2s")
        proc.wait(15)
        lines = out.close()
    assert re.search(r"WARNING spangate\.delivery: destination team/team-durable/langfuse/success: failing: HTTP 503; "
                     r"\d spans queued, retried with backoff$", failing), failing
    assert "body" not in failing and "{" not in failing  # the short reason, never the project's answer
    assert re.search(r": still failing after \d+s: HTTP 503; queued=3 retried=\d+ dead_lettered=0 \(\d+ attempts\)$",
                     still), still
    assert re.search(r"INFO spangate\.delivery: .*: recovered after \d+s down: 3 spans caught up, 0 still queued, "
                     r"0 dead-lettered meanwhile$", recovered), recovered
    assert re.search(r"WARNING spangate\.delivery: shutdown: waiting up to 2s to deliver 2 queued spans to \S+$",
                     waiting), waiting
    assert left.endswith("; the spooled ones are sent at the next start"), left
    assert sum(": failing: " in line for line in lines) == 2  # once per outage, not once per attempt
    logged = [line for line in lines if line.strip()]
    assert logged and all(ONE_FORMAT.match(line) for line in logged), "\n".join(
        line for line in logged if not ONE_FORMAT.match(line))
