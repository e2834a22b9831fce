"""Team callbacks set through the admin API, on the real server: URLs are normalised and checked against
the callback policy (at the API and on the connection), masked values are refused, and
``/callback/test`` says what happened in a few words, never with the destination's body."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.store import Store
from app.teams.state import secret_context
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.sinks import Reply
from tests.support.teams import (
    Database,
    LangfuseProject,
    admin_client,
    chat,
    database,
    error_of,
    gateway_settings,
    langfuse_callback,
    new_team,
    poll,
)
from tests.support.upstream import closed_port

INTERNAL_PAGE = b"<html>db01.internal root password hint: hunter2 ... stack trace ...</html>"
NOT_LISTED = "address not allowed: not in spangate_settings.callback_allowed_hosts"


@pytest.fixture(scope="module")
def project() -> Iterator[LangfuseProject]:
    project = LangfuseProject("team")
    with project.sink:
        yield project


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with database("sqlite", tmp_path_factory.mktemp("store")) as db, \
            running_gateway(gateway_settings(db), data_dir=tmp_path_factory.mktemp("gw")) as running:
        yield running


@pytest.fixture
def admin(gw: RunningGateway) -> Iterator[httpx.Client]:
    with admin_client(gw.base_url) as client:
        yield client



def set_host(admin: httpx.Client, team_id: str, host: str, secret: str = "sk-lf-secret") -> httpx.Response:
    return admin.post(f"/team/{team_id}/callback", json=langfuse_callback("pk-lf-1", secret, host))


@pytest.mark.parametrize(("host", "why"), [
    ("http://169.254.169.254", "link-local (cloud metadata)"),
    ("http://169.254.169.254.:80/latest", "link-local (cloud metadata)"),
    ("http://0xa9fea9fe", "link-local (cloud metadata)"),
    ("http://2852039166", "link-local (cloud metadata)"),
    ("http://169.254.10.1:3000", "link-local"),
    ("http://[fe80::1]:3000", "link-local"),
    ("http://[fd00:ec2::254]", "link-local (cloud metadata)"),
    ("http://[::ffff:169.254.169.254]", "link-local (cloud metadata)"),
    ("http://0.0.0.0:3000", "not a unicast address"),
    # metadata services outside link-local, and 169.254.169.254 inside every IPv6 wrapping of IPv4
    ("http://100.100.100.200/latest/meta-data", "cloud metadata"),
    ("http://168.63.129.16", "cloud metadata"),
    ("http://[fd00:ec2::23]", "cloud metadata"),
    ("http://[64:ff9b:1::a9fe:a9fe]", "link-local (cloud metadata)"),
    ("http://[64:ff9b:1:a9fe:a9:fe00::]", "link-local (cloud metadata)"),
    ("http://[::ffff:0:a9fe:a9fe]", "link-local (cloud metadata)"),
    ("http://[::a9fe:a9fe]", "link-local (cloud metadata)"),
    ("http://[2002:a9fe:a9fe::1]", "link-local (cloud metadata)"),
])
def test_link_local_callback_urls_are_refused_naming_the_var(admin: httpx.Client, host: str, why: str) -> None:
    team_id = new_team(admin)
    error = error_of(set_host(admin, team_id, host), 400)
    assert (error["param"], error["code"]) == ("callback_vars.langfuse_host", "callback_url_not_allowed")
    assert error["message"] == f"callback_vars.langfuse_host: address not allowed: {why}"
    assert admin.get(f"/team/{team_id}/callback").json()["data"]["success_callbacks"] == []


@pytest.mark.parametrize(("suffix", "why"), [("/#", "query or a fragment"), ("/v1/x?", "query or a fragment")])
def test_a_query_or_fragment_cannot_cut_off_the_path(admin: httpx.Client, project: LangfuseProject,
                                                     suffix: str, why: str) -> None:
    error = error_of(set_host(admin, new_team(admin), project.host + suffix), 400)
    assert error["param"] == "callback_vars" and "langfuse_host" in error["message"] and why in error["message"]


def test_shorthand_addresses_are_stored_as_the_address_connected_to(
        gw: RunningGateway, admin: httpx.Client, project: LangfuseProject) -> None:
    team_id = new_team(admin)
    port = project.host.rsplit(":", 1)[1]
    shown = set_host(admin, team_id, f"HTTP://127.1:{port}/", secret=project.secret_key)
    assert shown.status_code == 200, shown.text
    assert shown.json()["data"]["callback_vars"]["langfuse_host"] == f"http://127.0.0.1:{port}"
    ok = admin.post(f"/team/{team_id}/callback", json={**project.callback_body(), "callback_vars": {
        **project.callback_body()["callback_vars"], "langfuse_host": f"http://0x7f000001:{port}"}})
    assert ok.status_code == 200, ok.text
    key = admin.post("/key/generate", json={"team_id": team_id}).json()["key"]
    assert chat(gw.base_url, key, test="shorthand").status_code == 200
    project.wait_for(lambda spans: any(s["attributes"].get("langfuse.trace.metadata.test") == "shorthand"
                                       for s in spans))
    project.assert_wire_format()


@pytest.mark.parametrize("masked", [" ******** ", "*", "****", "\t********************\n"])
def test_the_mask_in_any_length_or_padding_is_refused(admin: httpx.Client, masked: str) -> None:
    team_id = new_team(admin)
    error = error_of(set_host(admin, team_id, "http://127.0.0.1:9", secret=masked), 400)
    assert (error["param"], error["code"]) == ("callback_vars.langfuse_secret_key", "masked_value")
    assert admin.get(f"/team/{team_id}/callback").json()["data"]["success_callbacks"] == []


def test_callback_test_reports_a_status_code_not_the_body(admin: httpx.Client, project: LangfuseProject) -> None:
    team_id = new_team(admin)
    assert set_host(admin, team_id, project.host).status_code == 200
    project.sink.respond = lambda _req: Reply(status=500, body=INTERNAL_PAGE, headers={"Content-Type": "text/html"})
    try:
        tested = admin.post(f"/team/{team_id}/callback/test")
    finally:
        project.sink.respond = lambda _req: Reply()
    assert tested.status_code == 200, tested.text
    [result] = tested.json()["results"]
    assert (result["status"], result["http_status"], result["detail"]) == ("failure", 500, "HTTP 500")
    assert "hunter2" not in tested.text and "db01" not in tested.text


def test_health_shows_the_short_reason_of_a_failing_destination(
        gw: RunningGateway, admin: httpx.Client, project: LangfuseProject) -> None:
    team_id = new_team(admin)
    assert set_host(admin, team_id, project.host).status_code == 200
    key = admin.post("/key/generate", json={"team_id": team_id}).json()["key"]
    project.sink.respond = lambda _req: Reply(status=500, body=INTERNAL_PAGE, headers={"Content-Type": "text/html"})
    try:
        assert chat(gw.base_url, key, test="health-reason").status_code == 200
        errors: list[str | None] = []

        def failed() -> bool:
            health = admin.get("/health/destinations").json()["destinations"]
            errors[:] = [d["last_error"] for d in health if d["team"] == team_id]
            return any(errors)

        poll(failed, timeout=10)
    finally:
        project.sink.respond = lambda _req: Reply()
    assert errors == ["HTTP 500"]


def test_callback_test_names_a_refused_connection(admin: httpx.Client) -> None:
    team_id = new_team(admin)
    assert set_host(admin, team_id, f"http://127.0.0.1:{closed_port()}").status_code == 200
    [result] = admin.post(f"/team/{team_id}/callback/test").json()["results"]
    assert (result["status"], result["http_status"], result["detail"]) == ("failure", None, "connection refused")


# --- an operator allow-list --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def restricted(project: LangfuseProject, tmp_path_factory: pytest.TempPathFactory,
               ) -> Iterator[tuple[RunningGateway, Database]]:
    port = project.host.rsplit(":", 1)[1]
    config_team = {"team_id": "cfg-team", "success_callback": ["langfuse"], "langfuse_public_key": project.public_key,
                   "langfuse_secret": project.secret_key, "langfuse_host": f"http://127.1:{port}"}
    with database("sqlite", tmp_path_factory.mktemp("store")) as db:
        config = gateway_settings(db, default_team_settings=[config_team])
        config["spangate_settings"]["callback_allowed_hosts"] = ["localhost", "10.0.0.0/8"]
        with running_gateway(config, data_dir=tmp_path_factory.mktemp("gw")) as running:
            yield running, db


def test_the_allow_list_limits_api_set_callbacks(restricted: tuple[RunningGateway, Database],
                                                 project: LangfuseProject) -> None:
    gw, _db = restricted
    port = project.host.rsplit(":", 1)[1]
    with admin_client(gw.base_url) as admin:
        team_id = new_team(admin)
        error = error_of(set_host(admin, team_id, f"http://127.0.0.1:{port}"), 400)
        assert error["message"] == f"callback_vars.langfuse_host: {NOT_LISTED}"
        assert set_host(admin, team_id, f"http://LOCALHOST:{port}", project.secret_key).status_code == 200
        assert admin.post(f"/team/{team_id}/callback/test").json()["results"][0]["status"] == "success"


def test_config_file_destinations_are_the_operators_and_not_restricted(
        restricted: tuple[RunningGateway, Database], project: LangfuseProject) -> None:
    gw, _db = restricted
    assert gw.config.warnings == ()  # callback_allowed_hosts is a known, typed setting
    with admin_client(gw.base_url) as admin:
        key = admin.post("/key/generate", json={"team_id": "cfg-team"}).json()["key"]
    assert chat(gw.base_url, key, test="config-team").status_code == 200
    project.wait_for(lambda spans: any(s["attributes"].get("langfuse.trace.metadata.test") == "config-team"
                                       for s in spans))


def test_a_stored_url_the_policy_refuses_is_refused_on_the_connection(
        restricted: tuple[RunningGateway, Database], project: LangfuseProject) -> None:
    """A row the API never checked (written before the allow-list, or by another tool): the client the
    team's exporter got checks the address it connects to, so nothing is sent."""
    gw, db = restricted
    with admin_client(gw.base_url) as admin:
        team_id = new_team(admin)
        write_callback_row(gw, db, team_id, project)
        received = len(project.sink.requests)
        tested = poll_callback_test(admin, team_id)
    [result] = tested["results"]
    assert (result["status"], result["http_status"], result["detail"]) == ("failure", None, NOT_LISTED)
    assert len(project.sink.requests) == received


def write_callback_row(gw: RunningGateway, db: Database, team_id: str, project: LangfuseProject) -> None:
    box = gw.gateway.store_link.secret_box
    ciphertext = box.encrypt({"langfuse_secret_key": project.secret_key},
                             context=secret_context(team_id, "langfuse", "success"))

    async def write() -> None:
        store = await Store.open(db.url)
        try:
            await store.set_callback(team_id, "langfuse", "success", ciphertext, ["langfuse_secret_key"],
                                     {"langfuse_public_key": project.public_key, "langfuse_host": project.host})
        finally:
            await store.close()

    asyncio.run(write())


def poll_callback_test(admin: httpx.Client, team_id: str) -> dict[str, Any]:
    """The watcher picks the row up within its poll interval; until then the team has no callbacks."""
    answers: list[httpx.Response] = []
    poll(lambda: answers.append(admin.post(f"/team/{team_id}/callback/test")) or answers[-1].status_code == 200,
         timeout=10)
    return answers[-1].json()


def test_a_bad_allow_list_entry_stops_start_up_naming_it(tmp_path: Path) -> None:
    from app.config.settings import ConfigError, parse_config

    raw = {"model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m"}}],
           "spangate_settings": {"callback_allowed_hosts": ["ok.example", "not a host"]}}
    with pytest.raises(ConfigError, match=r"spangate_settings\.callback_allowed_hosts\[1\]"):
        parse_config(raw, environ={}, base_dir=tmp_path)
