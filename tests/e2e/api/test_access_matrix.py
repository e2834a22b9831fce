"""The admin API's authorisation matrix on the real server, generated from ``app.api.admin.access.ACCESS``.

For every row whose route the app serves and every caller kind, the answer is allowed (any status
but 401/403, and no 5xx) or exactly the refusal the table implies, as OpenAI error JSON. And every
route the app serves has a row (or is one of the routes that check their callers themselves), so
a new admin route cannot ship without deciding who may call it.

The caller kinds, all about team A: the master key, a key of A's admin, a key of team B's admin, a
key of a plain member of A, a key of A with no user, and no key.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.api.admin.access import ACCESS, admin_paths
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.teams import (
    MASTER_KEY,
    Database,
    admin_client,
    database,
    error_of,
    gateway_settings,
    new_key,
    new_team,
    ok,
)

KINDS = ("master", "team_admin", "other_team_admin", "member", "plain_key", "no_key")


@dataclass
class World:
    admin: httpx.Client
    team: str  # team A: every team-scoped sample acts on it
    other_team: str
    keys: dict[str, str | None]

    def spare_key(self) -> str:
        """A fresh key of team A, for the calls that consume one (/key/delete)."""
        return new_key(self.admin, team_id=self.team)


def add_member(admin: httpx.Client, team_id: str, user_id: str, role: str) -> None:
    ok(admin.post("/team/member_add", json={"team_id": team_id, "member": {"role": role, "user_id": user_id}}))


def build_world(admin: httpx.Client) -> World:
    team, other = new_team(admin), new_team(admin)
    tag = uuid.uuid4().hex[:8]
    add_member(admin, team, f"boss-{tag}", "admin")
    add_member(admin, team, f"dev-{tag}", "user")
    add_member(admin, other, f"other-boss-{tag}", "admin")
    keys = {"master": MASTER_KEY, "team_admin": new_key(admin, team_id=team, user_id=f"boss-{tag}"),
            "other_team_admin": new_key(admin, team_id=other, user_id=f"other-boss-{tag}"),
            "member": new_key(admin, team_id=team, user_id=f"dev-{tag}"),
            "plain_key": new_key(admin, team_id=team), "no_key": None}
    return World(admin, team, other, keys)


Sample = Callable[[World], dict[str, Any]]
NOWHERE = "no-such-team-0b1c"  # master-only writes aim here (a 404 is an allowed answer that changes nothing)

# One request per row of the table; team-scoped ones act on team A.
SAMPLES: dict[tuple[str, str], Sample] = {
    ("POST", "/team/new"): lambda w: {"url": "/team/new", "json": {"team_id": ""}},
    ("GET", "/team/info"): lambda w: {"url": "/team/info", "params": {"team_id": w.team}},
    ("GET", "/team/list"): lambda w: {"url": "/team/list"},
    ("POST", "/team/update"): lambda w: {"url": "/team/update", "json": {"team_id": NOWHERE, "team_alias": "x"}},
    ("POST", "/team/delete"): lambda w: {"url": "/team/delete", "json": {"team_ids": [NOWHERE]}},
    ("POST", "/team/member_add"): lambda w: {"url": "/team/member_add", "json": {
        "team_id": NOWHERE, "member": {"role": "admin", "user_id": "intruder"}}},
    ("POST", "/team/member_delete"): lambda w: {"url": "/team/member_delete",
                                                "json": {"team_id": w.team, "user_id": "nobody"}},
    ("POST", "/user/new"): lambda w: {"url": "/user/new", "json": {"user_role": "proxy_admin"}},
    ("GET", "/user/info"): lambda w: {"url": "/user/info", "params": {"user_id": "nobody"}},
    ("POST", "/key/generate"): lambda w: {"url": "/key/generate", "json": {"team_id": w.team}},
    ("POST", "/key/update"): lambda w: {"url": "/key/update", "json": {"key": w.keys["plain_key"], "rpm_limit": 100}},
    ("GET", "/spend/logs"): lambda w: {"url": "/spend/logs", "params": {"team_id": w.team}},
    ("GET", "/key/list"): lambda w: {"url": "/key/list", "params": {"team_id": w.team}},
    ("GET", "/key/info"): lambda w: {"url": "/key/info", "params": {"key": w.keys["plain_key"]}},
    ("POST", "/key/info"): lambda w: {"url": "/key/info", "json": {"key": w.keys["plain_key"]}},
    ("POST", "/key/delete"): lambda w: {"url": "/key/delete", "json": {"keys": [w.spare_key()]}},
    ("GET", "/team/{team_id}/callback"): lambda w: {"url": f"/team/{w.team}/callback"},
    ("POST", "/team/{team_id}/callback"): lambda w: {"url": f"/team/{w.team}/callback", "json": {}},
    ("DELETE", "/team/{team_id}/callback/{callback_name}"): lambda w: {"url": f"/team/{w.team}/callback/athina"},
    ("POST", "/team/{team_id}/callback/test"): lambda w: {"url": f"/team/{w.team}/callback/test"},
    ("GET", "/team/{team_id}/callback/fields"): lambda w: {"url": f"/team/{w.team}/callback/fields"},
    ("POST", "/team/{team_id}/disable_logging"): lambda w: {"url": f"/team/{w.team}/disable_logging"},
    ("POST", "/team/{team_id}/enable_logging"): lambda w: {"url": f"/team/{w.team}/enable_logging"},
    ("GET", "/team/{team_id}/deliveries"): lambda w: {"url": f"/team/{w.team}/deliveries"},
    ("GET", "/team/{team_id}/deliveries/history"): lambda w: {"url": f"/team/{w.team}/deliveries/history"},
    ("GET", "/team/{team_id}/callback/{callback_name}/dead_letters"): lambda w: {
        "url": f"/team/{w.team}/callback/langfuse/dead_letters"},
    ("POST", "/team/{team_id}/callback/{callback_name}/replay"): lambda w: {
        "url": f"/team/{w.team}/callback/langfuse/replay", "json": {}},
    ("GET", "/health/destinations"): lambda w: {"url": "/health/destinations"},
    ("GET", "/health/destinations/history"): lambda w: {"url": "/health/destinations/history"},
    ("GET", "/health/destinations/{name}/dead_letters"): lambda w: {"url": "/health/destinations/no-such/dead_letters"},
    ("POST", "/health/destinations/{name}/replay"): lambda w: {"url": "/health/destinations/no-such/replay",
                                                               "json": {}},
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with database("sqlite", tmp_path_factory.mktemp("store")) as db:
        yield db


@pytest.fixture(scope="module")
def gw(store: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with running_gateway(gateway_settings(store), data_dir=tmp_path_factory.mktemp("gw"),
                         env={"SPANGATE_SALT_KEY": "matrix-test-salt-key-0123456789"}) as running:
        yield running


@pytest.fixture(scope="module")
def world(gw: RunningGateway) -> Iterator[World]:
    with admin_client(gw.base_url) as admin:
        yield build_world(admin)


def served(gw: RunningGateway) -> list[tuple[str, str]]:
    return admin_paths(gw.app.litestar.routes)


def test_every_admin_route_the_app_serves_has_a_row(gw: RunningGateway) -> None:
    missing = [route for route in served(gw) if route not in ACCESS]
    assert not missing, f"admin routes with no row in app/api/admin/access.py ACCESS: {missing}"
    assert set(served(gw)) >= {("POST", "/team/member_add"), ("GET", "/health/destinations")}


def test_every_row_has_a_sample() -> None:
    assert set(SAMPLES) == set(ACCESS), "add a sample request for each new row of ACCESS"


def expected(route: tuple[str, str], kind: str) -> int | None:
    """None: allowed; else the one status the caller must get."""
    if kind == "no_key":
        return 401
    if kind == "master" or (kind == "team_admin" and ACCESS[route].team_from is not None):
        return None
    return 403


def test_the_matrix(gw: RunningGateway, world: World) -> None:
    routes = [route for route in served(gw) if route in ACCESS]
    assert len(routes) >= 20  # the matrix covers the admin API, not a corner of it
    seen: dict[tuple[str, str, str], int] = {}
    for route in routes:
        for kind in KINDS:
            with admin_client(gw.base_url, world.keys[kind]) as client:
                response = client.request(route[0], **SAMPLES[route](world))
            seen[(*route, kind)] = response.status_code
            want = expected(route, kind)
            if want is None:
                assert response.status_code not in (401, 403) and response.status_code < 500, \
                    (route, kind, response.status_code, response.text)
            else:
                error_of(response, want)
    team_scoped = {r for r in routes if ACCESS[r].team_from is not None}
    assert {r for r in routes if seen[(*r, "team_admin")] not in (401, 403)} == team_scoped
