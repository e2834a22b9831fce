"""Issue 20, item 14: a disk that refuses the spool's writes, on the real gateway.

Before, each durable span was dropped (``spool_error``), readiness stayed 200 and the log printed a
traceback on every writer pass. Now the spans are held in memory (bounded), the outage is said once
and shown by readiness and ``/health/destinations``, and when space returns the held spans are
spooled again and every one is delivered.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from processors.delivery import DeliveryConfig
from tests.support.disk import spool_disk_full
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.sinks import HttpSink, Reply
from tests.support.teams import MASTER_KEY, mock_models, poll

CALLS = 5


class Webhook:
    """The operator's generic webhook: down until ``up``; records the call ids it accepted."""

    def __init__(self) -> None:
        self.up = False
        self.accepted: list[str] = []

    def respond(self, request: Any) -> Reply:
        if not self.up:
            return Reply(503)
        self.accepted += [json.loads(line)["data"]["id"] for line in request.body.splitlines() if line.strip()]
        return Reply(200)


@pytest.fixture
def webhook() -> Iterator[tuple[Webhook, HttpSink]]:
    state = Webhook()
    with HttpSink(state.respond) as sink:
        yield state, sink


def durable_gateway(tmp_path: Path, sink: HttpSink) -> Any:
    config = {"model_list": mock_models(), "general_settings": {"master_key": MASTER_KEY},
              "litellm_settings": {"callbacks": ["generic_api"]}}
    delivery = DeliveryConfig(spool_dir=tmp_path / "spool", durable=True, batch_delay=0.02, initial_backoff=0.02,
                              max_backoff=0.1, shutdown_flush_timeout=2.0, spool_retry_interval=0.1)
    return running_gateway(config, env={"GENERIC_LOGGER_ENDPOINT": sink.url + "/events"}, data_dir=tmp_path,
                           delivery_config=delivery)


def spool_of(admin: httpx.Client) -> dict[str, Any]:
    return admin.get("/health/destinations").json()["spool"]


def hook_health(admin: httpx.Client) -> dict[str, Any]:
    return next(h for h in admin.get("/health/destinations").json()["destinations"] if h["name"] == "generic_api")


def chats(gw: RunningGateway, admin: httpx.Client, count: int) -> list[str]:
    ids = []
    for i in range(count):
        reply = admin.post(f"{gw.openai_base_url}/chat/completions",
                           json={"model": "gpt-4o", "messages": [{"role": "user", "content": f"call {i}"}]})
        assert reply.status_code == 200, reply.text
        ids.append(reply.json()["id"])
    return ids


def test_a_full_disk_holds_spans_in_memory_says_so_once_and_catches_up(
        tmp_path: Path, webhook: tuple[Webhook, HttpSink], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    state, sink = webhook
    with durable_gateway(tmp_path, sink) as gw, httpx.Client(headers={"authorization": f"Bearer {MASTER_KEY}"},
                                                              base_url=gw.base_url, timeout=10) as admin:
        assert (admin.get("/health/readiness").json()["spool"], spool_of(admin)["state"]) == ("ok", "ok")
        with spool_disk_full(gw.gateway):
            sent = chats(gw, admin, CALLS)
            poll(lambda: hook_health(admin)["queued"] == CALLS and spool_of(admin)["state"] == "failing", timeout=5)
            ready = admin.get("/health/readiness")
            spool = spool_of(admin)
            queued = hook_health(admin)
        poll(lambda: spool_of(admin)["state"] == "ok", timeout=5)  # space is back: the held spans are spooled
        ready_again = admin.get("/health/readiness")
        state.up = True
        poll(lambda: set(sent) <= set(state.accepted), timeout=5)
        final = hook_health(admin)
    assert ready.status_code == 503
    assert ready.json()["spool"].startswith("failing (OperationalError: database or disk is full); ")
    assert (spool["reason"], spool["dropped"]) == ("OperationalError: database or disk is full", 0)
    assert 0 < spool["held_in_memory"] <= CALLS  # a first span may still fit in the file's last page
    assert queued["dropped"] == {}  # before: {"spool_error": 5}
    assert (ready_again.status_code, ready_again.json()["spool"]) == (200, "ok")
    assert sorted(set(state.accepted)) == sorted(sent) and final["dropped"] == {}
    lines = [r.getMessage() for r in caplog.records if r.name == "spangate.delivery" and "spool" in r.getMessage()]
    assert sum("writes failing (OperationalError: database or disk is full)" in line for line in lines) == 1, lines
    assert sum(line.startswith("spool: writes work again after ") for line in lines) == 1, lines
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a full disk"
