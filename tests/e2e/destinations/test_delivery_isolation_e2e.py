"""Destinations that trickle their answers must not hold delivery for other teams: the real server,
teams from ``default_team_settings`` on Langfuse, raw-socket destinations that answer a byte at a
time (each read quick, the whole answer far slower than any export should take), and a healthy
team's loopback Langfuse project. The export deadline itself: ``tests/exporters/transport/test_client_bounds.py``."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from processors.delivery import DeliveryConfig
from tests.support.gateway import running_gateway
from tests.support.raw_upstream import RawServer, trickle
from tests.support.teams import LangfuseProject, admin_client, database, gateway_settings, new_key, openai_client, poll

SLOW_TEAMS = 5  # more than the pool's threads and spares together (2 workers + 2 spares)


def langfuse_team(team_id: str, host: str) -> dict[str, Any]:
    return {"team_id": team_id, "success_callback": ["langfuse"], "langfuse_public_key": f"pk-{team_id}",
            "langfuse_secret": f"sk-{team_id}", "langfuse_host": host}


def send_chat(base_url: str, key: str) -> None:
    with openai_client(base_url, key) as client:
        assert client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}]).choices


def test_trickling_destinations_do_not_hold_a_healthy_teams_spans(tmp_path: Path) -> None:
    # The export deadline is far longer than the test: a slow export ends only when its server closes.
    delivery = DeliveryConfig(spool_dir=tmp_path / "spool", durable=False, batch_delay=0.02, workers=2,
                              probation_workers=1, stall_after=0.05, export_timeout=30.0, initial_backoff=0.05,
                              max_backoff=0.2, shutdown_flush_timeout=1.0)
    with ExitStack() as stack:
        # 200 bytes, one each 0.1 s: 20 s per answer, each read quick.
        slow = [stack.enter_context(RawServer(trickle(b" " * 198 + b"{}", every=0.1))) for _ in range(SLOW_TEAMS)]
        healthy = LangfuseProject("healthy")
        stack.enter_context(healthy.sink)
        db = stack.enter_context(database("sqlite", tmp_path))
        teams = [langfuse_team(f"slow-{n}", server.url) for n, server in enumerate(slow)]
        teams.append(langfuse_team("healthy", healthy.host))
        healthy.public_key, healthy.secret_key = "pk-healthy", "sk-healthy"
        config = gateway_settings(db, default_team_settings=teams)
        config["spangate_settings"]["shutdown_flush_seconds"] = 0.5  # the slow teams' spans stay queued
        gw = stack.enter_context(running_gateway(config, data_dir=tmp_path, env=db.env, delivery_config=delivery))
        with admin_client(gw.base_url) as admin:
            keys = {team["team_id"]: new_key(admin, team_id=team["team_id"]) for team in teams}
        for n in range(SLOW_TEAMS):
            send_chat(gw.base_url, keys[f"slow-{n}"])
        # Every thread the pool may have (workers and spares) is inside a slow destination's export.
        poll(lambda: sum(server.requests for server in slow) >= 4, timeout=10)
        send_chat(gw.base_url, keys["healthy"])
        healthy.wait_for(lambda spans: len(spans) >= 1)
        assert healthy.team_ids() == ["healthy"]
        # Delivered while every slow export was still running: they held spares, not the workers.
        slow_health = [h for h in gw.gateway.delivery.health() if (h.team or "").startswith("slow-")]
        assert [(h.delivered, h.failed) for h in slow_health] == [(0, 0)] * SLOW_TEAMS
        for server in slow:
            server.release.set()  # their exports end now (a failure, retried), and the gateway stops quickly
