"""Team-level ``metadata.logging`` end to end, as LiteLLM users write it on ``/team/new`` and
``/team/update``: real server, real store, official openai client.

The entries become the team's callbacks (the rows ``POST /team/{id}/callback`` writes), so they are
checked at save time, sealed, shown masked, and on /team/update replace the team's callbacks as a
whole. Counts are checked after the gateway has stopped, because stopping flushes delivery: a
stray span would be there by then.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gateway import running_gateway
from tests.support.sinks import HttpSink
from tests.support.teams import (
    MODEL,
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
    operator_env,
)

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
MASK = "********"


def logging_to(*projects: LangfuseProject, callback_type: str = "success") -> list[dict[str, Any]]:
    return [project.callback_body(callback_type) for project in projects]


def send_chats(base_url: str, key: str, label: str, count: int = 1) -> None:
    with openai_client(base_url, key) as client:
        for i in range(count):
            reply = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"hello from {label} #{i}"}],
                extra_body={"metadata": {"generation_name": label}})
            assert reply.choices[0].message.content


def names(project: LangfuseProject) -> Counter[str]:
    return Counter(span["name"] for span in project.spans())


def team_callbacks(admin: httpx.Client, team_id: str) -> dict[str, Any]:
    return ok(admin.get(f"/team/{team_id}/callback"))["data"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_team_new_logging_is_the_teams_callback(backend: str, tmp_path: Path) -> None:
    """The silent failure: ``/team/new`` with ``metadata.logging`` answered 200 and logged nowhere new."""
    with (database(backend, tmp_path) as db, langfuse_projects("A", "operator") as projects,
          running_gateway(gateway_settings(db, success_callback=["langfuse"]), data_dir=tmp_path,
                          env={**operator_env(projects["operator"]), **db.env}) as gw,
          admin_client(gw.base_url) as admin):
        created = admin.post("/team/new", json={"team_alias": "meta-team", "metadata": {
            "logging": logging_to(projects["A"]), "cost_center": "42"}})
        team_id = ok(created)["team_id"]
        plain_team = new_team(admin)
        assert team_callbacks(admin, team_id) == {
            "team_id": team_id, "success_callbacks": ["langfuse"], "failure_callbacks": [],
            "callback_vars": {"langfuse_public_key": projects["A"].public_key, "langfuse_secret_key": MASK,
                              "langfuse_host": projects["A"].host}}
        shown = {"cost_center": "42", "logging": [{
            "callback_name": "langfuse", "callback_type": "success",
            "callback_vars": {"langfuse_public_key": projects["A"].public_key, "langfuse_secret_key": MASK,
                              "langfuse_host": projects["A"].host}}]}
        info = admin.get("/team/info", params={"team_id": team_id})
        listed = admin.get("/team/list")
        renamed = admin.post("/team/update", json={"team_id": team_id, "team_alias": "renamed"})
        assert ok(created)["metadata"] == ok(info)["team_info"]["metadata"] == ok(renamed)["metadata"] == shown
        assert {t["team_id"]: t["metadata"] for t in ok(listed)}[team_id] == shown
        for answer in (created, info, listed, renamed, admin.get(f"/team/{team_id}/callback")):
            assert projects["A"].secret_key not in answer.text, answer.request.url
        send_chats(gw.base_url, new_key(admin, team_id=team_id), "meta-team", 3)
        send_chats(gw.base_url, new_key(admin, team_id=plain_team), "plain-team", 2)
        projects["A"].wait_for(lambda s: len(s) >= 3)
        projects["operator"].wait_for(lambda s: len(s) >= 2)
        if backend == "sqlite":
            assert projects["A"].public_key.encode() in db.raw_bytes(), "the check below would prove nothing"
            assert projects["A"].secret_key.encode() not in db.raw_bytes()
    assert names(projects["A"]) == {"meta-team": 3}
    assert names(projects["operator"]) == {"plain-team": 2}
    projects["A"].assert_wire_format()  # the real secret reached it: sealed, not lost
    assert set(projects["A"].team_ids()) == {team_id}


TYPOS = [
    ({"callback_name": "langfuze"}, "metadata.logging[0].callback_name", "langfuze"),
    ({"callback_vars": {"langfuse_secret_kye": "x"}}, "metadata.logging[0].callback_vars", "langfuse_secret_kye"),
    ({"callback_type": "sucess"}, "metadata.logging[0].callback_type", "callback_type"),
    ({"callback_var": {}}, "metadata.logging[0].callback_var", "callback_var"),
    ({"callback_vars": {"langfuse_host": "http://169.254.169.254"}},
     "metadata.logging[0].callback_vars.langfuse_host", "not allowed"),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_typos_are_refused_and_nothing_is_saved(backend: str, tmp_path: Path) -> None:
    with (database(backend, tmp_path) as db, langfuse_projects("A", "B") as projects,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env=db.env) as gw,
          admin_client(gw.base_url) as admin):
        good = projects["A"].callback_body()
        for change, param, named in TYPOS:
            entry = {**good, **change}
            if "callback_vars" in change:
                entry["callback_vars"] = {**good["callback_vars"], **change["callback_vars"]}
            error = error_of(admin.post("/team/new", json={"team_id": "typo", "metadata": {"logging": [entry]}}), 400)
            assert error["param"] == param and named in error["message"], error
        for metadata, param in (({"logging": {"callback_name": "langfuse"}}, "metadata.logging"),
                                ({"logging": [good, good]}, "metadata.logging[1].callback_name"),
                                ({"turn_off_message_logging": "yes"}, "metadata.turn_off_message_logging")):
            assert error_of(admin.post("/team/new", json={"metadata": metadata}), 400)["param"] == param
        assert ok(admin.get("/team/list")) == [], "a refused /team/new saved a team"
        # On update: refused too, and the team's callbacks stay as they were.
        team_id = new_team(admin, metadata={"logging": [good]})
        typo = {**good, "callback_type": "failure",
                "callback_vars": {**good["callback_vars"], "langfuse_hots": projects["B"].host}}
        update = admin.post("/team/update", json={"team_id": team_id, "metadata": {"logging": [good, typo]}})
        error = error_of(update, 400)
        assert (error["param"], "langfuse_hots" in error["message"]) == ("metadata.logging[1].callback_vars", True)
        assert team_callbacks(admin, team_id)["callback_vars"]["langfuse_host"] == projects["A"].host
        # What GET showed, posted back, must not store the mask as the secret.
        shown = ok(admin.get("/team/info", params={"team_id": team_id}))["team_info"]["metadata"]
        masked = admin.post("/team/update", json={"team_id": team_id, "metadata": shown})
        assert error_of(masked, 400)["code"] == "masked_value"
        missing = admin.post("/team/update", json={"team_id": "no-such-team", "metadata": {"logging": [typo]}})
        assert error_of(missing, 404)["code"] == "team_not_found"
        send_chats(gw.base_url, new_key(admin, team_id=team_id), "after-typo")
        projects["A"].wait_for(lambda s: len(s) >= 1)
    assert names(projects["A"]) == {"after-typo": 1} and projects["B"].sink.requests == []
    projects["A"].assert_wire_format()


@pytest.mark.parametrize("backend", BACKENDS)
def test_team_update_logging_replaces_the_teams_callbacks(backend: str, tmp_path: Path) -> None:
    """Callbacks set through /team/{id}/callback included; metadata without ``logging`` keeps them;
    ``[]`` removes them all, and the team is back on the operator's destination."""
    with (database(backend, tmp_path) as db, langfuse_projects("A", "B", "C", "operator") as projects,
          running_gateway(gateway_settings(db, success_callback=["langfuse"]), data_dir=tmp_path,
                          env={**operator_env(projects["operator"]), **db.env}) as gw,
          admin_client(gw.base_url) as admin):
        team_id = new_team(admin)
        ok(admin.post(f"/team/{team_id}/callback", json=projects["A"].callback_body()))
        key = new_key(admin, team_id=team_id)
        send_chats(gw.base_url, key, "on-A")
        projects["A"].wait_for(lambda s: len(s) >= 1)
        logging = logging_to(projects["B"]) + logging_to(projects["C"], callback_type="success_and_failure")
        updated = ok(admin.post("/team/update", json={"team_id": team_id, "metadata": {"logging": logging}}))
        assert [e["callback_vars"]["langfuse_host"] for e in updated["metadata"]["logging"]] == [
            projects["B"].host, projects["C"].host]
        data = team_callbacks(admin, team_id)
        assert (data["success_callbacks"], data["failure_callbacks"]) == (["langfuse"], ["langfuse"])
        send_chats(gw.base_url, key, "on-B-and-C")
        projects["B"].wait_for(lambda s: len(s) >= 1)
        projects["C"].wait_for(lambda s: len(s) >= 1)
        kept = ok(admin.post("/team/update", json={"team_id": team_id, "metadata": {"owner": "ops"}}))
        assert (kept["metadata"]["owner"], len(kept["metadata"]["logging"])) == ("ops", 2)
        ok(admin.post("/team/update", json={"team_id": team_id, "metadata": {"logging": []}}))
        assert team_callbacks(admin, team_id)["success_callbacks"] == []
        assert "logging" not in ok(admin.get("/team/info", params={"team_id": team_id}))["team_info"]["metadata"]
        send_chats(gw.base_url, key, "back-on-operator")
        projects["operator"].wait_for(lambda s: len(s) >= 1)
    assert names(projects["A"]) == {"on-A": 1}
    assert names(projects["B"]) == names(projects["C"]) == {"on-B-and-C": 1}
    assert names(projects["operator"]) == {"back-on-operator": 1}


def test_a_team_entry_may_not_send_its_stored_secret_elsewhere(tmp_path: Path) -> None:
    """The credential-family rule on /team/update: moving an entry's endpoint must bring its secret
    headers again, whichever form stored it; resent, they go to the new endpoint only."""
    token = "team-hook-token-8e2b"
    with (database("sqlite", tmp_path) as db, HttpSink() as first, HttpSink() as second,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env=db.env) as gw,
          admin_client(gw.base_url) as admin):

        def generic(sink: HttpSink, **extra: str) -> dict[str, Any]:
            return {"callback_name": "generic", "callback_type": "success",
                    "callback_vars": {"generic_logger_endpoint": sink.url + "/in", **extra}}

        by_metadata = new_team(admin, metadata={"logging": [generic(first, generic_logger_headers=f"X-T={token}")]})
        by_route = new_team(admin)
        ok(admin.post(f"/team/{by_route}/callback", json=generic(first, generic_logger_headers=f"X-T={token}")))
        for team_id in (by_metadata, by_route):
            moved = admin.post("/team/update", json={"team_id": team_id, "metadata": {"logging": [generic(second)]}})
            error = error_of(moved, 400)
            assert (error["param"], error["code"]) == ("metadata.logging[0].callback_vars.generic_logger_endpoint",
                                                       "secret_must_be_resent")
            assert "generic_logger_headers" in error["message"]
            assert team_callbacks(admin, team_id)["callback_vars"]["generic_logger_endpoint"] == first.url + "/in"
        ok(admin.post("/team/update", json={"team_id": by_metadata, "metadata": {
            "logging": [generic(second, generic_logger_headers=f"X-T={token}")]}}))
        send_chats(gw.base_url, new_key(admin, team_id=by_metadata), "moved")
        second.wait_for(lambda reqs: len(reqs) >= 1)
    assert first.requests == []
    assert all(r.headers["x-t"] == token for r in second.requests)
