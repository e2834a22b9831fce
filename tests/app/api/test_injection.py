"""Routes get their services by name through Litestar's dependency injection, not from a Gateway: each
app here is built from the routes and stand-in services alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from litestar import Litestar, MediaType, Request, Response
from litestar.di import Provide
from litestar.testing import TestClient

from app.api.admin import AdminCheck, admin_routes
from app.api.health import health_routes
from app.api.models import llm_routes
from app.api.services import OpenStore
from app.config.settings import GatewayConfig, MetricsAuth
from app.errors import GatewayError, error_body
from app.store import TeamRecord
from app.teams.auth import Authenticator
from app.teams.directory import TeamDirectory
from processors.delivery import DeliveryConfig, DeliveryManager

MASTER = "sk-master-injection"
AS_ADMIN = {"Authorization": f"Bearer {MASTER}"}
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class StandInSettings:
    """The ``ApiSettings`` the routes read; a Gateway's ``GatewayConfig`` in production."""

    model_names: tuple[str, ...] = ()
    master_key: str | None = MASTER
    metrics_auth: MetricsAuth = field(default_factory=MetricsAuth)
    deployments: tuple[Any, ...] = ()
    success_callback: tuple[str, ...] = ()
    failure_callback: tuple[str, ...] = ()


class StandInTeamStore:
    """The three store reads ``GET /team/list`` makes."""

    def __init__(self, *teams: TeamRecord) -> None:
        self.teams = list(teams)

    async def list_teams(self) -> list[TeamRecord]:
        return self.teams

    async def list_team_callbacks(self, team_ids: Any) -> dict[str, Any]:
        return {}

    async def period_spend(self, counters: Any) -> dict[Any, int]:
        list(counters)
        return {}


class StandInLink:
    """An ``OpenStore``: a store, a box, a watcher and the readiness verdict."""

    def __init__(self, status: str = "connected", store: Any = None) -> None:
        self.status = status
        self.store = store
        self.secret_box = None
        self.watcher = None

    def db_status(self) -> str:
        return self.status


def fixed(value: Any) -> Provide:
    return Provide(lambda: value, use_cache=True, sync_to_thread=False)


def not_asked(name: str) -> Provide:
    """For the routes of a group a test does not call: Litestar wants every declared dependency provided."""
    def provide() -> None:
        raise AssertionError(f"{name} was asked for by a route this test does not call")

    return Provide(provide, sync_to_thread=False)


def as_json(_request: Request[Any, Any, Any], exc: GatewayError) -> Response[Any]:
    # The server's error mapping, reduced to what these tests read: the status.
    return Response(error_body(exc), status_code=exc.status, media_type=MediaType.JSON)


def app_of(routes: list[Any], **services: Provide) -> Litestar:
    return Litestar(route_handlers=routes, dependencies=services, exception_handlers={GatewayError: as_json})


def test_models_lists_the_injected_settings_models_for_the_injected_authenticator() -> None:
    app = app_of(llm_routes(), auth=fixed(Authenticator(MASTER)),
                 settings=fixed(StandInSettings(model_names=("alpha", "beta"))))
    with TestClient(app) as client:
        listed = client.get("/v1/models", headers=AS_ADMIN)
        refused = client.get("/v1/models", headers={"Authorization": "Bearer sk-wrong"})
    assert [m["id"] for m in listed.json()["data"]] == ["alpha", "beta"]
    assert refused.status_code == 401


def test_two_apps_built_from_the_same_routes_keep_their_own_services() -> None:
    auth = fixed(Authenticator(MASTER))
    apps = [app_of(llm_routes(), auth=auth, settings=fixed(StandInSettings(model_names=(name,))))
            for name in ("first", "second")]
    listed = []
    for app in apps:
        with TestClient(app) as client:
            listed.append([m["id"] for m in client.get("/models", headers=AS_ADMIN).json()["data"]])
    assert listed == [["first"], ["second"]]


def test_readiness_reads_the_store_link_on_each_request(tmp_path: Any) -> None:
    links: list[OpenStore | None] = [None]
    others = {name: not_asked(name) for name in ("auth", "admin_check", "hooks", "metric_reader", "reachability")}
    app = app_of(health_routes(), settings=fixed(StandInSettings(success_callback=("file",))),
                 delivery=fixed(DeliveryManager(DeliveryConfig(spool_dir=tmp_path))),
                 store_link=Provide(lambda: links[-1], sync_to_thread=False), **others)
    with TestClient(app) as client:
        before = client.get("/health/readiness")
        links.append(StandInLink("connected"))
        after = client.get("/health/readiness")
    assert (before.status_code, before.json()["db"]) == (503, "Not connected")
    assert (after.status_code, after.json()["db"]) == (200, "connected")
    assert after.json()["success_callbacks"] == ["file"]


def test_admin_routes_take_the_admin_check_and_store_they_are_given() -> None:
    team = TeamRecord("t-injected", "Injected", ("alpha",), {}, False, T0, T0)
    link = StandInLink(store=StandInTeamStore(team))
    auth = Authenticator(MASTER)
    teams = fixed(TeamDirectory(GatewayConfig(deployments=())))
    others = {name: not_asked(name) for name in ("rules", "tester", "delivery", "history")}
    enabled = app_of(admin_routes(AdminCheck(MASTER, auth)), store_link=fixed(link), teams=teams, **others)
    disabled = app_of(admin_routes(AdminCheck(None, auth)), store_link=fixed(link), teams=teams, **others)
    with TestClient(enabled) as client:
        listed = client.get("/team/list", headers=AS_ADMIN)
        anonymous = client.get("/team/list")
    with TestClient(disabled) as client:
        off = client.get("/team/list", headers=AS_ADMIN)
    assert [(t["team_id"], t["team_alias"]) for t in listed.json()] == [("t-injected", "Injected")]
    assert anonymous.status_code == 401
    assert off.status_code == 403
