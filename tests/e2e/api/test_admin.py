"""The admin API on the real server: auth, teams, keys, team callbacks, logging switches.

One gateway (SQLite store) serves the module; each test makes its own teams and keys, and finds its
spans by ``metadata.test``, so tests do not depend on each other. Global callbacks are the
operator's Langfuse project and the ``file`` destination.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.api.admin import MASK
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.spanlog import read_spans
from tests.support.teams import (
    MODEL,
    OTHER_MODEL,
    Database,
    LangfuseProject,
    admin_client,
    chat,
    database,
    error_of,
    gateway_settings,
    langfuse_callback,
    langfuse_projects,
    mock_models,
    new_key,
    new_team,
    ok,
    operator_env,
    poll,
)

FILE_TAG = "spangate.metadata.test"
LANGFUSE_TAG = "langfuse.trace.metadata.test"


@pytest.fixture(scope="module")
def projects() -> Iterator[dict[str, LangfuseProject]]:
    with langfuse_projects("operator", "team") as made:
        yield made


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with database("sqlite", tmp_path_factory.mktemp("store")) as db:
        yield db


@pytest.fixture(scope="module")
def gw(projects: dict[str, LangfuseProject], store: Database,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    config = gateway_settings(store, success_callback=["langfuse", "file"])
    with running_gateway(config, data_dir=tmp_path_factory.mktemp("gw"),
                         env=operator_env(projects["operator"])) as running:
        yield running


@pytest.fixture
def admin(gw: RunningGateway) -> Iterator[httpx.Client]:
    with admin_client(gw.base_url) as client:
        yield client





def tagged(spans: list[dict[str, Any]], attribute: str, tag: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["attributes"].get(attribute) == tag]


# --- auth ------------------------------------------------------------------------------------------


def admin_calls(team_id: str, key: str) -> dict[tuple[str, str], dict[str, Any]]:
    """One valid call per admin route (method, OpenAPI path) -> request kwargs."""
    callback = {"callback_name": "langfuse", "callback_vars": {"langfuse_public_key": "pk-x",
                                                               "langfuse_secret_key": "sk-x"}}
    team_path = f"/team/{team_id}"
    return {
        ("POST", "/team/new"): {"url": "/team/new", "json": {}},
        ("GET", "/team/info"): {"url": "/team/info", "params": {"team_id": team_id}},
        ("GET", "/team/list"): {"url": "/team/list"},
        ("POST", "/team/update"): {"url": "/team/update", "json": {"team_id": team_id, "team_alias": "x"}},
        ("POST", "/team/delete"): {"url": "/team/delete", "json": {"team_ids": [team_id]}},
        ("POST", "/key/generate"): {"url": "/key/generate", "json": {"team_id": team_id}},
        ("GET", "/key/info"): {"url": "/key/info", "params": {"key": key}},
        ("POST", "/key/info"): {"url": "/key/info", "json": {"key": key}},
        ("POST", "/key/delete"): {"url": "/key/delete", "json": {"keys": [key]}},
        ("POST", "/key/update"): {"url": "/key/update", "json": {"key": key, "key_alias": "x"}},
        ("GET", "/key/list"): {"url": "/key/list", "params": {"page": 1, "size": 5}},
        ("POST", "/team/{team_id}/callback"): {"url": f"{team_path}/callback", "json": callback},
        ("GET", "/team/{team_id}/callback"): {"url": f"{team_path}/callback"},
        ("DELETE", "/team/{team_id}/callback/{callback_name}"): {"url": f"{team_path}/callback/langfuse"},
        ("POST", "/team/{team_id}/disable_logging"): {"url": f"{team_path}/disable_logging"},
        ("POST", "/team/{team_id}/enable_logging"): {"url": f"{team_path}/enable_logging"},
        ("POST", "/team/{team_id}/callback/test"): {"url": f"{team_path}/callback/test"},
        ("GET", "/team/{team_id}/callback/fields"): {"url": f"{team_path}/callback/fields"},
        ("POST", "/team/member_add"): {"url": "/team/member_add",
                                       "json": {"team_id": team_id, "member": {"role": "user", "user_id": "u-x"}}},
        ("POST", "/team/member_delete"): {"url": "/team/member_delete", "json": {"team_id": team_id, "user_id": "u-x"}},
        ("POST", "/user/new"): {"url": "/user/new", "json": {}},
        ("GET", "/user/info"): {"url": "/user/info", "params": {"user_id": "u-x"}},
        ("GET", "/spend/logs"): {"url": "/spend/logs", "params": {"team_id": team_id}},
        ("GET", "/team/{team_id}/deliveries"): {"url": f"{team_path}/deliveries"},
        ("GET", "/team/{team_id}/deliveries/history"): {"url": f"{team_path}/deliveries/history"},
        ("GET", "/team/{team_id}/callback/{callback_name}/dead_letters"): {
            "url": f"{team_path}/callback/langfuse/dead_letters"},
        ("POST", "/team/{team_id}/callback/{callback_name}/replay"): {"url": f"{team_path}/callback/langfuse/replay"},
    }


def schema_admin_routes(admin: httpx.Client) -> set[tuple[str, str]]:
    paths = ok(admin.get("/schema/openapi.json"))["paths"]
    return {(method.upper(), path) for path, ops in paths.items() if not path.startswith("/health")
            for method in ops if method in ("get", "post", "delete", "put", "patch")}


def test_openapi_schema_lists_the_admin_routes(admin: httpx.Client) -> None:
    routes = schema_admin_routes(admin)
    assert {("POST", "/team/new"), ("POST", "/key/generate"), ("POST", "/team/{team_id}/callback"),
            ("GET", "/team/{team_id}/callback")} <= routes
    # Each under its resource's tag, as LiteLLM's schema files them (one controller per resource).
    paths = ok(admin.get("/schema/openapi.json"))["paths"]
    tags = {(method, path): paths[path][method.lower()]["tags"] for method, path in routes}
    assert tags == {(method, path): [_TAGS.get(path.split("/")[1], "team management")]
                    for method, path in admin_calls("t", "k")}


_TAGS = {"key": "key management", "user": "user management", "spend": "budget & spend tracking"}


def test_only_the_master_key_administers(gw: RunningGateway, admin: httpx.Client) -> None:
    team_id = new_team(admin)
    key = new_key(admin, team_id=team_id)
    calls = admin_calls(team_id, key)
    assert set(calls) == schema_admin_routes(admin), "an admin route is not covered by this test"
    for (method, _path), kwargs in calls.items():
        # A malformed call too: auth must be decided before the body or query is looked at.
        malformed = {"url": kwargs["url"], "content": b"{not json"}
        for token, status in ((key, 403), ("sk-wrong-0000000000", 401), (None, 401)):
            with admin_client(gw.base_url, token) as client:
                for request in (kwargs, malformed):
                    error = error_of(client.request(method, **request), status)
                    assert (status == 403) == (error["code"] == "admin_only"), (method, kwargs["url"], error)
    assert ok(admin.get("/team/info", params={"team_id": team_id}))["keys"], "a refused call changed the team"
    assert chat(gw.base_url, key).status_code == 200


def test_admin_api_is_disabled_without_a_master_key(tmp_path: Path) -> None:
    with database("sqlite", tmp_path) as db:
        config = gateway_settings(db)
        del config["general_settings"]["master_key"]
        with running_gateway(config, data_dir=tmp_path) as gw, admin_client(gw.base_url, "sk-anything") as client:
            for method, url in (("POST", "/team/new"), ("GET", "/team/list"), ("POST", "/key/generate")):
                error = error_of(client.request(method, url, json={}), 403)
                assert "master_key" in error["message"]


def test_unknown_team_is_404_for_the_admin(admin: httpx.Client) -> None:
    missing = f"no-such-team-{uuid.uuid4()}"
    calls = [("GET", "/team/info", {"params": {"team_id": missing}}),
             ("POST", "/team/update", {"json": {"team_id": missing, "team_alias": "x"}}),
             ("POST", "/team/delete", {"json": {"team_ids": [missing]}}),
             ("POST", "/key/generate", {"json": {"team_id": missing}}),
             ("POST", f"/team/{missing}/callback", {"json": langfuse_callback("pk-x", "sk-x", "http://127.0.0.1:9")}),
             ("GET", f"/team/{missing}/callback", {}),
             ("DELETE", f"/team/{missing}/callback/langfuse", {}),
             ("POST", f"/team/{missing}/disable_logging", {}),
             ("POST", f"/team/{missing}/enable_logging", {})]
    for method, url, kwargs in calls:
        error_of(admin.request(method, url, **kwargs), 404)


# --- teams -----------------------------------------------------------------------------------------


def test_team_crud(gw: RunningGateway, admin: httpx.Client) -> None:
    generated = new_team(admin, team_alias="platform")
    assert str(uuid.UUID(generated)) == generated
    named = f"team-{uuid.uuid4().hex[:8]}"
    assert new_team(admin, team_id=named, models=[MODEL], metadata={"cost_center": "42"}) == named
    assert error_of(admin.post("/team/new", json={"team_id": named}), 409)["code"] == "team_exists"

    key = new_key(admin, team_id=named, key_alias="ci")
    info = ok(admin.get("/team/info", params={"team_id": named}))
    assert info["team_info"]["models"] == [MODEL]
    assert info["team_info"]["metadata"] == {"cost_center": "42"}
    assert [(k["key_alias"], k["token"]) for k in info["keys"]] == [("ci", hashlib.sha256(key.encode()).hexdigest())]
    assert key not in str(info)

    listed = {t["team_id"]: t for t in ok(admin.get("/team/list"))}
    assert listed[generated]["team_alias"] == "platform" and named in listed

    updated = ok(admin.post("/team/update", json={"team_id": named, "team_alias": "renamed", "models": []}))
    assert (updated["team_alias"], updated["models"], updated["metadata"]) == ("renamed", [], {"cost_center": "42"})

    assert chat(gw.base_url, key).status_code == 200
    assert ok(admin.post("/team/delete", json={"team_ids": [named]}))["deleted_teams"] == [named]
    assert error_of(chat(gw.base_url, key), 401)  # its keys went with it, on this instance at once
    error_of(admin.get("/key/info", params={"key": key}), 404)
    error_of(admin.get("/team/info", params={"team_id": named}), 404)
    assert named not in {t["team_id"] for t in ok(admin.get("/team/list"))}


# --- keys ------------------------------------------------------------------------------------------


def test_key_is_shown_once_and_stored_only_as_a_hash(gw: RunningGateway, admin: httpx.Client,
                                                     store: Database) -> None:
    team_id = new_team(admin)
    generated = ok(admin.post("/key/generate", json={"team_id": team_id, "key_alias": "once"}))
    key, digest = generated["key"], hashlib.sha256(generated["key"].encode()).hexdigest()
    assert key.startswith("sk-") and len(key) >= 32
    assert generated["token"] == digest
    for lookup in (key, digest):
        info = ok(admin.get("/key/info", params={"key": lookup}))
        assert info["info"]["token"] == digest and info["info"]["key_alias"] == "once"
        assert key not in str(info) and key[3:] not in str(info)
    dump = store.raw_dump()
    assert digest in dump, "the dump must see the key row, or the next check proves nothing"
    assert key[3:] not in dump
    assert key[3:].encode() not in store.raw_bytes()


def test_key_with_a_duration_expires(gw: RunningGateway, admin: httpx.Client) -> None:
    generated = ok(admin.post("/key/generate", json={"duration": "1s"}))
    assert generated["expires"] is not None
    assert chat(gw.base_url, generated["key"]).status_code == 200
    waited = poll(lambda: chat(gw.base_url, generated["key"]).status_code == 401, timeout=5, interval=0.1)
    assert error_of(chat(gw.base_url, generated["key"]), 401)["code"] == "key_expired"
    assert waited < 2
    error_of(admin.post("/key/generate", json={"duration": "soon"}), 400)


def test_deleted_key_stops_working(gw: RunningGateway, admin: httpx.Client) -> None:
    key, other = new_key(admin), new_key(admin)
    assert chat(gw.base_url, key).status_code == 200
    assert ok(admin.post("/key/delete", json={"keys": [key]}))["deleted_keys"] == [
        hashlib.sha256(key.encode()).hexdigest()]
    assert error_of(chat(gw.base_url, key), 401)
    assert chat(gw.base_url, other).status_code == 200
    error_of(admin.get("/key/info", params={"key": key}), 404)
    error_of(admin.post("/key/delete", json={"keys": [key]}), 404)


def test_models_allowed_by_key_and_by_team(gw: RunningGateway, admin: httpx.Client) -> None:
    assert {m["model_name"] for m in mock_models()} == {MODEL, OTHER_MODEL}
    key_limited = new_key(admin, models=[MODEL])
    assert chat(gw.base_url, key_limited, MODEL).status_code == 200
    error = error_of(chat(gw.base_url, key_limited, OTHER_MODEL), 403)
    assert OTHER_MODEL in error["message"] and "key" in error["message"]

    team_limited = new_key(admin, team_id=new_team(admin, models=[OTHER_MODEL]))
    assert chat(gw.base_url, team_limited, OTHER_MODEL).status_code == 200
    error = error_of(chat(gw.base_url, team_limited, MODEL), 403)
    assert MODEL in error["message"] and "team" in error["message"]


# --- callbacks -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "param", "named"), [
    ({"callback_name": "helicone"}, "callback_name", "langfuse"),
    ({"callback_vars": {"langfuse_public_key": "pk-1"}}, "callback_vars", "langfuse_secret_key"),
    ({"callback_vars": {"langfuse_public_key": "pk-1", "langfuse_secret_key": "sk-1", "langfuse_region": "eu"}},
     "callback_vars", "langfuse_region"),
    ({"callback_type": "always"}, "callback_type", "success_and_failure"),
    ({"callback_vars": {"langfuse_public_key": "pk-1", "langfuse_secret_key": "sk-1", "langfuse_host": "ftp://x"}},
     "callback_vars", "langfuse_host"),
])
def test_callback_validation(admin: httpx.Client, body: dict[str, Any], param: str, named: str) -> None:
    team_id = new_team(admin)
    full = {**langfuse_callback("pk-v", "sk-v", "http://127.0.0.1:9"), **body}
    error = error_of(admin.post(f"/team/{team_id}/callback", json=full), 400)
    assert error["param"] == param and named in error["message"], error
    assert ok(admin.get(f"/team/{team_id}/callback"))["data"]["success_callbacks"] == []


def test_same_name_and_type_replaces(admin: httpx.Client) -> None:
    team_id = new_team(admin)
    first, second = langfuse_callback("pk-first", "sk-first"), langfuse_callback("pk-second", "sk-second")
    assert ok(admin.post(f"/team/{team_id}/callback", json=first))["replaced"] is False
    reply = ok(admin.post(f"/team/{team_id}/callback", json=second))
    assert reply["replaced"] is True and reply["status"] == "success"
    assert reply["data"]["callback_vars"]["langfuse_public_key"] == "pk-second"
    default_type = {k: v for k, v in first.items() if k != "callback_type"}
    reply = ok(admin.post(f"/team/{team_id}/callback", json=default_type))
    assert reply["replaced"] is False  # success_and_failure is another entry than success
    assert reply["data"]["failure_callbacks"] == ["langfuse"]


def test_callback_secret_is_masked_encrypted_and_never_logged(
        gw: RunningGateway, admin: httpx.Client, store: Database, projects: dict[str, LangfuseProject],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    project = projects["team"]
    team_id = new_team(admin)
    secret = project.secret_key
    posted = admin.post(f"/team/{team_id}/callback", json=project.callback_body())
    shown = admin.get(f"/team/{team_id}/callback")
    data = ok(shown)["data"]
    assert data == {"team_id": team_id, "success_callbacks": ["langfuse"], "failure_callbacks": [],
                    "callback_vars": {"langfuse_public_key": project.public_key, "langfuse_host": project.host,
                                      "langfuse_secret_key": MASK}}
    masked_back = admin.post(f"/team/{team_id}/callback", json={
        **project.callback_body(), "callback_vars": {**project.callback_body()["callback_vars"],
                                                     "langfuse_secret_key": MASK}})
    assert error_of(masked_back, 400)["code"] == "masked_value"

    key = new_key(admin, team_id=team_id)
    assert chat(gw.base_url, key, test="masked").status_code == 200
    project.wait_for(lambda spans: bool(tagged(spans, LANGFUSE_TAG, "masked")))
    project.assert_wire_format()  # still the real secret: the mask was not stored

    for response in (posted, shown, masked_back):
        assert secret not in response.text
    assert secret not in caplog.text and project.basic_auth.split()[1] not in caplog.text
    dump = store.raw_dump()
    assert project.public_key in dump, "the dump must see the callback row, or the next check proves nothing"
    assert secret not in dump and secret.encode() not in store.raw_bytes()


def test_delete_callback_falls_back_to_the_global_destination(
        gw: RunningGateway, admin: httpx.Client, projects: dict[str, LangfuseProject]) -> None:
    team_id = new_team(admin)
    ok(admin.post(f"/team/{team_id}/callback", json=projects["team"].callback_body()))
    reply = ok(admin.delete(f"/team/{team_id}/callback/langfuse"))
    assert reply["data"]["success_callbacks"] == [] and reply["removed"]
    error_of(admin.delete(f"/team/{team_id}/callback/langfuse"), 404)
    assert chat(gw.base_url, new_key(admin, team_id=team_id), test="deleted-callback").status_code == 200
    projects["operator"].wait_for(lambda spans: bool(tagged(spans, LANGFUSE_TAG, "deleted-callback")))
    assert not tagged(projects["team"].spans(), LANGFUSE_TAG, "deleted-callback")


def test_disable_logging_silences_own_and_global_destinations(
        gw: RunningGateway, admin: httpx.Client, projects: dict[str, LangfuseProject]) -> None:
    own_team, plain_team = new_team(admin), new_team(admin)
    ok(admin.post(f"/team/{own_team}/callback", json=projects["team"].callback_body()))
    keys = {"own": new_key(admin, team_id=own_team), "plain": new_key(admin, team_id=plain_team)}
    for team_id in (own_team, plain_team):
        assert ok(admin.post(f"/team/{team_id}/disable_logging"))["logging_disabled"] is True
    for name, key in keys.items():
        assert chat(gw.base_url, key, test=f"off-{name}").status_code == 200
    for team_id in (own_team, plain_team):
        assert ok(admin.post(f"/team/{team_id}/enable_logging"))["logging_disabled"] is False
    for name, key in keys.items():
        assert chat(gw.base_url, key, test=f"on-{name}").status_code == 200

    # Each destination is one FIFO queue: once the "on" span is there, an "off" span sent before
    # it would be there too.
    projects["team"].wait_for(lambda spans: bool(tagged(spans, LANGFUSE_TAG, "on-own")))
    projects["operator"].wait_for(lambda spans: bool(tagged(spans, LANGFUSE_TAG, "on-plain")))
    poll(lambda: {"on-own", "on-plain"} <= {s["attributes"].get(FILE_TAG) for s in read_spans(gw.span_log_path)},
         timeout=10)
    for spans, attribute in ((projects["team"].spans(), LANGFUSE_TAG), (projects["operator"].spans(), LANGFUSE_TAG),
                             (read_spans(gw.span_log_path), FILE_TAG)):
        assert not tagged(spans, attribute, "off-own") and not tagged(spans, attribute, "off-plain")
    assert not tagged(projects["operator"].spans(), LANGFUSE_TAG, "on-own")


def test_disable_logging_works_for_a_team_that_exists_only_in_config(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    with database("sqlite", tmp_path / "store") as db:
        config = gateway_settings(db, success_callback=["file"],
                                  default_team_settings=[{"team_id": "cfg-only", "success_callback": []}])
        with running_gateway(config, data_dir=tmp_path / "gw") as gw, admin_client(gw.base_url) as admin:
            key = new_key(admin, team_id="cfg-only")
            assert ok(admin.post("/team/cfg-only/disable_logging"))["logging_disabled"] is True
            assert chat(gw.base_url, key, test="cfg-off").status_code == 200
            assert ok(admin.post("/team/cfg-only/enable_logging"))["logging_disabled"] is False
            assert chat(gw.base_url, key, test="cfg-on").status_code == 200
            poll(lambda: bool(tagged(read_spans(gw.span_log_path), FILE_TAG, "cfg-on")), timeout=10)
            assert not tagged(read_spans(gw.span_log_path), FILE_TAG, "cfg-off")
