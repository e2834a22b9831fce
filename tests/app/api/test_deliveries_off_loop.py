"""The delivery routes read the delivery layer's health (every destination, each behind its lock,
lag percentiles) in a worker thread, never on the event loop that serves LLM calls."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar.testing import TestClient

from app.api.admin import AdminCheck, admin_routes
from app.api.health import admin_health_routes
from app.api.history import DeliveryHistory
from app.config.settings import GatewayConfig
from app.store import TeamRecord
from app.teams.auth import Authenticator
from app.teams.directory import TeamDirectory
from processors.delivery import DeliveryConfig, DeliveryManager, DestinationHealth
from tests.app.api.test_injection import AS_ADMIN, MASTER, T0, StandInLink, StandInSettings, app_of, fixed, not_asked

TEAM = TeamRecord("t-1", None, (), {}, False, T0, T0)


class TeamStore:
    async def get_team(self, team_id: str) -> TeamRecord | None:
        return TEAM if team_id == TEAM.team_id else None


class WhereHealthRuns(DeliveryManager):
    """Records, for each ``health()`` read, whether it ran on the event loop's thread."""

    def __init__(self, config: DeliveryConfig) -> None:
        super().__init__(config)
        self.on_loop: list[bool] = []

    def health(self) -> list[DestinationHealth]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.on_loop.append(False)
        else:
            self.on_loop.append(True)
        return super().health()


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/team/t-1/deliveries"),
    ("GET", "/team/t-1/callback/langfuse/dead_letters"),
    ("POST", "/team/t-1/callback/langfuse/replay"),
    ("POST", "/health/destinations/langfuse/replay"),
    ("GET", "/team/t-1/deliveries/history"),
    ("GET", "/health/destinations/history"),
    ("GET", "/health/destinations/langfuse/dead_letters"),
])
def test_the_delivery_routes_read_health_off_the_event_loop(tmp_path: Any, method: str, path: str) -> None:
    delivery = WhereHealthRuns(DeliveryConfig(spool_dir=tmp_path))
    auth = Authenticator(MASTER)
    others = {name: not_asked(name) for name in ("rules", "tester", "hooks", "metric_reader", "reachability")}
    app = app_of([*admin_routes(AdminCheck(MASTER, auth), *admin_health_routes())], store_link=fixed(StandInLink(
        store=TeamStore())), teams=fixed(TeamDirectory(GatewayConfig(deployments=()))), delivery=fixed(delivery),
        auth=fixed(auth), admin_check=fixed(AdminCheck(MASTER, auth)), settings=fixed(StandInSettings()),
        history=fixed(DeliveryHistory(delivery)), **others)
    with TestClient(app) as client:
        answer = client.request(method, path, headers=AS_ADMIN)
    assert answer.status_code in (200, 404), answer.text  # 404: no such callback, after reading health
    assert delivery.on_loop == [False]
