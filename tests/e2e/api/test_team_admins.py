"""Team admins end to end on the real server: LiteLLM's member and user routes, and what a team
admin's key may do for its own team (set and test its callbacks, make and revoke its keys) and may
not do anywhere else. The team's callback is a loopback Langfuse project; calls go through the
official openai client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import RunningGateway, running_gateway
from tests.support.postgres import fresh_database
from tests.support.teams import (
    MODEL,
    SALT_KEY,
    Database,
    LangfuseProject,
    admin_client,
    database,
    error_of,
    gateway_settings,
    langfuse_projects,
    new_key,
    new_team,
    ok,
    openai_client,
)

ENV = {"SPANGATE_SALT_KEY": SALT_KEY}


@pytest.fixture(scope="module")
def projects() -> Iterator[dict[str, LangfuseProject]]:
    with langfuse_projects("alpha", "beta") as made:
        yield made


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with (database("sqlite", tmp_path_factory.mktemp("store")) as db,
          running_gateway(gateway_settings(db), data_dir=tmp_path_factory.mktemp("gw"), env=ENV) as running):
        yield running


@pytest.fixture
def admin(gw: RunningGateway) -> Iterator[httpx.Client]:
    with admin_client(gw.base_url) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def member_add(admin: httpx.Client, team_id: str, member: object) -> httpx.Response:
    return admin.post("/team/member_add", json={"team_id": team_id, "member": member})


def admin_key(admin: httpx.Client, team_id: str) -> tuple[str, str]:
    """(user id, key) of a new admin member of ``team_id``."""
    user = unique("boss")
    ok(member_add(admin, team_id, {"role": "admin", "user_id": user}))
    return user, new_key(admin, team_id=team_id, user_id=user)


def chat_once(base_url: str, key: str) -> None:
    with openai_client(base_url, key) as client:
        reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content


def test_member_add_creates_the_user_and_team_info_shows_members_with_roles(admin: httpx.Client) -> None:
    team_id, known = new_team(admin), unique("known")
    ok(admin.post("/user/new", json={"user_id": known, "user_email": f"{known}@example.com",
                                     "auto_create_key": False}))
    fresh = unique("fresh")
    added = ok(member_add(admin, team_id, [{"role": "admin", "user_id": fresh},
                                           {"role": "user", "user_email": f"{known}@example.com"}]))
    assert [u["user_id"] for u in added["updated_users"]] == [fresh, known]
    assert added["updated_team_memberships"] == [{"team_id": team_id, "user_id": fresh, "role": "admin"},
                                                 {"team_id": team_id, "user_id": known, "role": "user"}]
    info = ok(admin.get("/user/info", params={"user_id": fresh}))
    assert (info["user_info"]["user_role"], info["user_info"]["teams"]) == ("internal_user", [team_id])
    assert info["teams"] == [{"team_id": team_id, "user_id": fresh, "role": "admin"}]
    members = ok(admin.get("/team/info", params={"team_id": team_id}))["team_info"]["members_with_roles"]
    assert members == [{"user_id": fresh, "user_email": None, "role": "admin"},
                       {"user_id": known, "user_email": f"{known}@example.com", "role": "user"}]
    again = error_of(member_add(admin, team_id, {"role": "user", "user_id": fresh}), 400)
    assert (again["code"], again["param"]) == ("member_exists", "member")
    bad = error_of(member_add(admin, team_id, [{"role": "owner", "user_id": "x"}]), 400)
    assert bad["param"] == "member[0].role"


def test_user_new_makes_the_users_key_and_refuses_proxy_admin_roles(gw: RunningGateway,
                                                                     admin: httpx.Client) -> None:
    team_id, user = new_team(admin), unique("dev")
    made = ok(admin.post("/user/new", json={"user_id": user, "teams": [team_id], "key_alias": "first"}))
    assert (made["user_id"], made["teams"], made["key"].startswith("sk-")) == (user, [team_id], True)
    info = ok(admin.get("/user/info", params={"user_id": user}))
    assert [(k["token"], k["user_id"], k["key_alias"]) for k in info["keys"]] == [(made["token"], user, "first")]
    assert info["teams"] == [{"team_id": team_id, "user_id": user, "role": "user"}]
    chat_once(gw.base_url, made["key"])
    refused = error_of(admin.post("/user/new", json={"user_id": unique("x"), "user_role": "proxy_admin"}), 400)
    assert refused["param"] == "user_role"
    assert error_of(admin.get("/user/info", params={"user_id": unique("nobody")}), 404)["code"] == "user_not_found"


def test_a_team_admin_manages_its_own_team_and_nothing_else(gw: RunningGateway, admin: httpx.Client,
                                                            projects: dict[str, LangfuseProject]) -> None:
    team, other = new_team(admin), new_team(admin)
    _, boss = admin_key(admin, team)
    with admin_client(gw.base_url, boss) as as_admin:
        ok(as_admin.post(f"/team/{team}/callback", json=projects["alpha"].callback_body()))
        shown = ok(as_admin.get(f"/team/{team}/callback"))["data"]
        assert shown["success_callbacks"] == ["langfuse"]
        assert ok(as_admin.post(f"/team/{team}/callback/test"))["status"] == "success"
        made = ok(as_admin.post("/key/generate", json={"team_id": team, "key_alias": "ci"}))
        assert made["team_id"] == team
        chat_once(gw.base_url, made["key"])
        projects["alpha"].wait_for(lambda spans: any(s["attributes"].get("spangate.team.id") == team
                                                     and s["name"] != "chat spangate-callback-test" for s in spans))
        listed = ok(as_admin.get("/key/list", params={"team_id": team}))["keys"]
        assert made["token"] in {k["token"] for k in listed} and {k["team_id"] for k in listed} == {team}
        assert ok(as_admin.get("/team/info", params={"team_id": team}))["team_id"] == team
        # Another team: refused before anything is read or written.
        for method, url, body in (("POST", f"/team/{other}/callback", projects["beta"].callback_body()),
                                  ("GET", f"/team/{other}/callback", None),
                                  ("POST", "/key/generate", {"team_id": other}),
                                  ("POST", "/key/generate", {}),
                                  ("GET", "/key/list", None),
                                  ("GET", "/team/info", None)):
            params = {"team_id": other} if method == "GET" and not url.startswith("/team/" + other) else None
            error_of(as_admin.request(method, url, json=body, params=params), 403)
        # The master key's own routes stay its own.
        for method, url, body in (("POST", "/team/member_add", {"team_id": team, "member": {"role": "admin",
                                                                                             "user_id": "me-too"}}),
                                  ("POST", "/team/update", {"team_id": team, "team_alias": "mine"}),
                                  ("GET", "/team/list", None), ("GET", "/health/destinations", None)):
            assert error_of(as_admin.request(method, url, json=body), 403)["code"] == "admin_only"
    assert ok(admin.get(f"/team/{other}/callback"))["data"]["success_callbacks"] == []
    ok(admin.post(f"/team/{other}/callback", json=projects["beta"].callback_body()))  # the master key can


def test_a_team_admin_revokes_its_teams_keys_only(gw: RunningGateway, admin: httpx.Client) -> None:
    team, other = new_team(admin), new_team(admin)
    _, boss = admin_key(admin, team)
    mine, theirs = new_key(admin, team_id=team), new_key(admin, team_id=other)
    with admin_client(gw.base_url, boss) as as_admin:
        assert ok(as_admin.post("/key/info", json={"key": mine}))["info"]["team_id"] == team
        error_of(as_admin.post("/key/info", json={"key": theirs}), 403)
        error_of(as_admin.post("/key/delete", json={"keys": [mine, theirs]}), 403)  # all of them its team's, or none
        error_of(as_admin.post("/key/delete", json={"keys": ["sk-no-such-key"]}), 403)  # unknown tells nothing
        ok(as_admin.post("/key/delete", json={"keys": [mine]}))
    error_of(admin.post("/key/info", json={"key": mine}), 404)
    chat_once(gw.base_url, theirs)


def test_members_plain_keys_and_demoted_admins_are_refused(gw: RunningGateway, admin: httpx.Client,
                                                           projects: dict[str, LangfuseProject]) -> None:
    team = new_team(admin)
    ok(member_add(admin, team, {"role": "user", "user_id": (dev := unique("dev"))}))
    boss_id, boss = admin_key(admin, team)
    # A key of the team admin's user in another team is not an admin key there, nor here.
    elsewhere = new_key(admin, team_id=new_team(admin), user_id=boss_id)
    for key in (new_key(admin, team_id=team, user_id=dev), new_key(admin, team_id=team), elsewhere):
        with admin_client(gw.base_url, key) as client:
            error_of(client.post(f"/team/{team}/callback", json=projects["alpha"].callback_body()), 403)
            error_of(client.post("/key/generate", json={"team_id": team}), 403)
    with admin_client(gw.base_url, boss) as as_admin:
        ok(as_admin.get(f"/team/{team}/callback"))
        ok(admin.post("/team/member_delete", json={"team_id": team, "user_id": boss_id}))
        error_of(as_admin.get(f"/team/{team}/callback"), 403)  # at once on this instance
    chat_once(gw.base_url, boss)  # still a key of the team, for calls


def test_the_team_the_guard_reads_is_the_team_the_handler_uses(gw: RunningGateway, admin: httpx.Client) -> None:
    team, other = new_team(admin), new_team(admin)
    _, boss = admin_key(admin, team)
    with admin_client(gw.base_url, boss) as as_admin:
        # A repeated field: both decoders take the last value, so the guard judges what is written.
        twice = f'{{"team_id": "{team}", "team_id": "{other}"}}'.encode()
        error_of(as_admin.post("/key/generate", content=twice, headers={"content-type": "application/json"}), 403)
        made = ok(as_admin.post("/key/generate", content=f'{{"team_id": "{other}", "team_id": "{team}"}}'.encode(),
                                headers={"content-type": "application/json"}))
        assert made["team_id"] == team
        assert error_of(as_admin.post("/key/generate", content=b"{not json"), 400)["code"] == "invalid_json"


def test_team_admins_on_postgresql(tmp_path: Path, projects: dict[str, LangfuseProject]) -> None:
    with (fresh_database() as url,
          running_gateway(gateway_settings(Database("postgres", url)), data_dir=tmp_path, env=ENV) as gw,
          admin_client(gw.base_url) as admin):
        team, other = new_team(admin), new_team(admin)
        _, boss = admin_key(admin, team)
        with admin_client(gw.base_url, boss) as as_admin:
            ok(as_admin.post(f"/team/{team}/callback", json=projects["alpha"].callback_body()))
            chat_once(gw.base_url, ok(as_admin.post("/key/generate", json={"team_id": team}))["key"])
            error_of(as_admin.post("/key/generate", json={"team_id": other}), 403)
        members = ok(admin.get("/team/info", params={"team_id": team}))["team_info"]["members_with_roles"]
        assert [m["role"] for m in members] == ["admin"]


def test_a_repeated_team_id_or_key_is_refused_not_judged_on_one_value(gw: RunningGateway,
                                                                         admin: httpx.Client) -> None:
    """The guard once judged the first ``?team_id=`` while the handler read the last: A's admin read B."""
    team, other = new_team(admin), new_team(admin)
    _, boss = admin_key(admin, team)
    mine, theirs = new_key(admin, team_id=team), new_key(admin, team_id=other)
    with admin_client(gw.base_url, boss) as as_admin:
        for url, name in ((f"/team/info?team_id={team}&team_id={other}", "team_id"),
                          (f"/key/list?team_id={team}&team_id={other}", "team_id"),
                          (f"/key/list?team_id={team}&team_id={team}", "team_id"),
                          (f"/key/info?key={mine}&key={theirs}", "key")):
            refused = error_of(as_admin.get(url), 400)
            assert (refused["code"], refused["param"]) == ("duplicate_parameter", name), url
        twice = error_of(as_admin.get("/key/info", headers=[("x-spangate-key", mine), ("x-spangate-key", theirs)]),
                         400)
        assert (twice["code"], twice["param"]) == ("duplicate_parameter", "x-spangate-key")
        assert ok(as_admin.get("/key/info", headers={"x-spangate-key": mine}))["info"]["team_id"] == team
        assert ok(as_admin.get(f"/team/info?team_id={team}"))["team_id"] == team


def test_every_key_a_key_info_request_names_must_be_the_teams(gw: RunningGateway, admin: httpx.Client) -> None:
    """POST /key/info answers the body's key: the guard once judged ``?key=`` or the header instead."""
    team, other = new_team(admin), new_team(admin)
    _, boss = admin_key(admin, team)
    mine, theirs = new_key(admin, team_id=team), new_key(admin, team_id=other)
    with admin_client(gw.base_url, boss) as as_admin:
        error_of(as_admin.post(f"/key/info?key={mine}", json={"key": theirs}), 403)
        error_of(as_admin.post("/key/info", headers={"x-spangate-key": mine}, json={"key": theirs}), 403)
        error_of(as_admin.get(f"/key/info?key={mine}", headers={"x-spangate-key": theirs}), 403)
        error_of(as_admin.post("/key/info", json={"key": [theirs]}), 403)  # not a key: refused, not skipped
        assert ok(as_admin.post(f"/key/info?key={mine}", json={"key": mine}))["info"]["team_id"] == team
        assert ok(as_admin.post("/key/info", json={"key": mine}))["info"]["team_id"] == team


def test_a_team_admin_makes_keys_for_itself_only(gw: RunningGateway, admin: httpx.Client) -> None:
    """A key minted for the team's other admin kept that admin's rights after its minter was removed."""
    team = new_team(admin)
    owner, _ = admin_key(admin, team)
    deputy_id, deputy = admin_key(admin, team)
    newbie = unique("newbie")
    with admin_client(gw.base_url, deputy) as as_deputy:
        for user_id in (owner, newbie, "", 7):
            refused = error_of(as_deputy.post("/key/generate", json={"team_id": team, "user_id": user_id}), 403)
            assert (refused["code"], refused["param"]) == ("other_user", "user_id")
        own = ok(as_deputy.post("/key/generate", json={"team_id": team, "user_id": deputy_id}))
        plain = ok(as_deputy.post("/key/generate", json={"team_id": team}))
    assert (own["user_id"], plain["user_id"]) == (deputy_id, None)
    assert error_of(admin.get("/user/info", params={"user_id": newbie}), 404)["code"] == "user_not_found"
    ok(admin.post("/team/member_delete", json={"team_id": team, "user_id": deputy_id}))
    with admin_client(gw.base_url, own["key"]) as minted:
        error_of(minted.get("/key/list", params={"team_id": team}), 403)
    assert ok(admin.post("/key/generate", json={"team_id": team, "user_id": owner}))["user_id"] == owner
