"""The team-based-logging seed end to end: real server, real store, official openai client.

Two teams log to two loopback Langfuse projects, a third team has no callback of its own and
falls back to the operator's global ``success_callback: ["langfuse"]``. Counts are checked after
the gateway has stopped, because stopping flushes delivery: a stray span would be there by then.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import running_gateway
from tests.support.sinks import HttpSink, always
from tests.support.spanlog import read_spans
from tests.support.teams import (
    MODEL,
    LangfuseProject,
    admin_client,
    chat,
    database,
    gateway_settings,
    langfuse_projects,
    new_key,
    new_team,
    openai_client,
    operator_env,
)

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
TEAM = "spangate.team.id"


def send_chats(base_url: str, key: str, count: int, team: str) -> None:
    with openai_client(base_url, key) as client:
        for i in range(count):
            reply = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"Hello, Claude gm! ({team} #{i})"}],
                extra_body={"metadata": {"generation_name": f"gen-{team}", "trace_user_id": f"user-{team}",
                                         "session_id": f"session-{team}", "tags": [team, "seed"]}})
            assert reply.choices[0].message.content


def assert_only_team(project: LangfuseProject, team_id: str | None, team: str, count: int) -> None:
    """``project`` holds exactly ``count`` spans, all of ``team_id``, in its own credentials."""
    project.assert_wire_format()
    assert Counter(project.team_ids()) == {team_id: count}
    for span in project.spans():
        attrs = span["attributes"]
        assert span["name"] == f"gen-{team}"
        assert attrs["langfuse.trace.name"] == f"gen-{team}"
        assert attrs["user.id"] == f"user-{team}"
        assert attrs["session.id"] == f"session-{team}"
        assert attrs["langfuse.trace.tags"] == [team, "seed"]
        assert attrs["langfuse.observation.type"] == "generation"
        assert "spangate.key.hash" not in attrs


@pytest.mark.parametrize("backend", BACKENDS)
def test_seed_two_projects_and_a_team_on_the_operator_project(backend: str, tmp_path: Path) -> None:
    counts = {"one": 3, "two": 2, "three": 4}  # distinct, so a misrouted span changes a count
    with (database(backend, tmp_path) as db, langfuse_projects("A", "B", "operator") as projects,
          running_gateway(gateway_settings(db, success_callback=["langfuse"]), data_dir=tmp_path,
                          env={**operator_env(projects["operator"]), **db.env}) as gw,
          admin_client(gw.base_url) as admin):
        teams: dict[str, str] = {}
        for name in counts:
            created = admin.post("/team/new", json={"team_alias": f"team-{name}"})
            assert created.status_code == 200, created.text
            teams[name] = created.json()["team_id"]
        for name, project in (("one", projects["A"]), ("two", projects["B"])):
            reply = admin.post(f"/team/{teams[name]}/callback", json=project.callback_body())
            assert reply.status_code == 200, reply.text
            assert reply.json()["data"]["success_callbacks"] == ["langfuse"]
        keys = {}
        for name, team_id in teams.items():
            generated = admin.post("/key/generate", json={"team_id": team_id})
            assert generated.status_code == 200, generated.text
            keys[name] = generated.json()["key"]
        for name, count in counts.items():
            send_chats(gw.base_url, keys[name], count, name)
        projects["A"].wait_for(lambda s: len(s) >= counts["one"])
        projects["B"].wait_for(lambda s: len(s) >= counts["two"])
        projects["operator"].wait_for(lambda s: len(s) >= counts["three"])
    assert_only_team(projects["A"], teams["one"], "one", counts["one"])
    assert_only_team(projects["B"], teams["two"], "two", counts["two"])
    assert_only_team(projects["operator"], teams["three"], "three", counts["three"])
    for name, project in (("one", projects["A"]), ("two", projects["B"]), ("three", projects["operator"])):
        assert {s["attributes"]["spangate.team.alias"] for s in project.spans()} == {f"team-{name}"}


def config_teams(projects: dict[str, LangfuseProject]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The seed's ``default_team_settings`` (``langfuse_secret`` spelling, ``os.environ/`` values) and its env."""
    entries, env = [], {}
    for n, (team_id, project) in enumerate((("my-secret-project", projects["A"]),
                                            ("ishaans-secret-project", projects["B"])), start=1):
        entries.append({"team_id": team_id, "success_callback": ["langfuse"],
                        "langfuse_public_key": f"os.environ/LANGFUSE_PUB_KEY_{n}",
                        "langfuse_secret": f"os.environ/LANGFUSE_PRIVATE_KEY_{n}",
                        "langfuse_host": f"os.environ/LANGFUSE_HOST_{n}"})
        env |= {f"LANGFUSE_PUB_KEY_{n}": project.public_key, f"LANGFUSE_PRIVATE_KEY_{n}": project.secret_key,
                f"LANGFUSE_HOST_{n}": project.host}
    return entries, env


@pytest.mark.parametrize("backend", BACKENDS)
def test_config_form_default_team_settings(backend: str, tmp_path: Path) -> None:
    counts = {"one": 2, "two": 3, "keyless-team": 1}
    with database(backend, tmp_path) as db, langfuse_projects("A", "B", "operator") as projects:
        entries, env = config_teams(projects)
        config = gateway_settings(db, success_callback=["langfuse"], default_team_settings=entries)
        with (running_gateway(config, data_dir=tmp_path, env={**env, **operator_env(projects["operator"]), **db.env})
              as gw, admin_client(gw.base_url) as admin):
            keys = {}
            for name, team_id in (("one", "my-secret-project"), ("two", "ishaans-secret-project"),
                                  ("keyless-team", None)):
                generated = admin.post("/key/generate", json={"team_id": team_id} if team_id else {})
                assert generated.status_code == 200, generated.text
                assert generated.json()["team_id"] == team_id
                keys[name] = generated.json()["key"]
            assert admin.get("/team/info", params={"team_id": "my-secret-project"}).status_code == 200
            for name, count in counts.items():
                send_chats(gw.base_url, keys[name], count, name)
            projects["A"].wait_for(lambda s: len(s) >= counts["one"])
            projects["B"].wait_for(lambda s: len(s) >= counts["two"])
            projects["operator"].wait_for(lambda s: len(s) >= counts["keyless-team"])
    assert_only_team(projects["A"], "my-secret-project", "one", counts["one"])
    assert_only_team(projects["B"], "ishaans-secret-project", "two", counts["two"])
    assert_only_team(projects["operator"], None, "keyless-team", counts["keyless-team"])


def test_team_whose_callback_cannot_be_decrypted_logs_to_nobody(tmp_path: Path) -> None:
    """After the salt key changes, a team's stored secret cannot be read: its spans must not fall
    back to the operator's project (whose owner must never see them), but go nowhere until fixed."""
    with database("sqlite", tmp_path) as db, langfuse_projects("A", "operator") as projects:
        config = gateway_settings(db, success_callback=["langfuse"])
        env = operator_env(projects["operator"])
        with running_gateway(config, data_dir=tmp_path, env=env) as gw, admin_client(gw.base_url) as admin:
            team_id = admin.post("/team/new", json={}).json()["team_id"]
            assert admin.post(f"/team/{team_id}/callback", json=projects["A"].callback_body()).status_code == 200
            key = admin.post("/key/generate", json={"team_id": team_id}).json()["key"]
            plain_key = admin.post("/key/generate", json={}).json()["key"]
        rotated = {**env, "SPANGATE_SALT_KEY": env["SPANGATE_SALT_KEY"] + "-rotated"}
        with running_gateway(config, data_dir=tmp_path, env=rotated) as gw:
            send_chats(gw.base_url, key, 2, "one")
            send_chats(gw.base_url, plain_key, 1, "keyless")
            projects["operator"].wait_for(lambda s: len(s) >= 1)
    assert projects["A"].spans() == []
    assert Counter(projects["operator"].team_ids()) == {None: 1}


def test_request_metadata_cannot_forge_what_the_gateway_owns(tmp_path: Path) -> None:
    """Issue 20, item 17: a client's ``user_api_key_team_id`` reached destinations as the call's team,
    and its ``raw_request`` as the gateway's curl command while log_raw_request was off."""
    forged = {"user_api_key_team_id": "team-forged", "user_api_key_alias": "alias-forged",
              "raw_request": "curl forged", "model_group": "group-forged", "headers": {"x": "headers-forged"}}
    with (database("sqlite", tmp_path) as db, HttpSink(always(200)) as generic,
          running_gateway(gateway_settings(db, success_callback=["generic", "file"]), data_dir=tmp_path,
                          env={"GENERIC_LOGGER_ENDPOINT": generic.url + "/log", **db.env}) as gw,
          admin_client(gw.base_url) as admin):
        team = new_team(admin, team_alias="real")
        key = new_key(admin, team_id=team)
        assert chat(gw.base_url, key, tag="kept", **forged).status_code == 200
        span_log = gw.span_log_path
    [span] = read_spans(span_log)  # the gateway has stopped: delivery is flushed
    [record] = [json.loads(r.body)["data"] for r in generic.requests]
    assert span["attributes"][TEAM] == record["team_id"] == team
    assert record["metadata"]["tag"] == "kept"
    for seen in (json.dumps(span), json.dumps(record)):
        assert "forged" not in seen, seen
