"""Key-level logging end to end (issue 12), as LiteLLM users write it: ``metadata.logging`` on
``/key/generate`` and ``/key/update``, real server, real store, official openai client.

A key's entries replace its team's of the same name for that key's calls; a key without a team has
its entries replace the operator's global destination of the same name. Counts are checked after
the gateway has stopped, because stopping flushes delivery: a stray span would be there by then.
"""

from __future__ import annotations

import itertools
from collections import Counter
from contextlib import ExitStack
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
    chat,
    database,
    error_of,
    gateway_settings,
    langfuse_projects,
    new_team,
    ok,
    openai_client,
    operator_env,
    poll,
)

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
MASK = "********"


def logging_to(project: LangfuseProject, callback_type: str = "success", **extra: Any) -> list[dict[str, Any]]:
    """``metadata.logging`` as LiteLLM's docs write it, sending to ``project``."""
    entry = project.callback_body(callback_type)
    entry["callback_vars"].update(extra)
    return [entry]


def new_key(admin: httpx.Client, **body: Any) -> dict[str, Any]:
    return ok(admin.post("/key/generate", json=body))


def send_chats(base_url: str, key: str, label: str, count: int = 1, prompt: str | None = None) -> None:
    with openai_client(base_url, key) as client:
        for i in range(count):
            reply = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": prompt or f"hello from {label} #{i}"}],
                extra_body={"metadata": {"generation_name": label}})
            assert reply.choices[0].message.content


def names(project: LangfuseProject) -> Counter[str]:
    return Counter(span["name"] for span in project.spans())


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_key_logs_to_its_own_project_its_teammates_to_the_teams(backend: str, tmp_path: Path) -> None:
    """The issue's case: one team on project A, its key k1 on project B, its key k2 on nothing of its
    own; plus a key without a team on project C beside the operator's global Langfuse."""
    counts = {"k1": 3, "k2": 2, "solo": 4, "plain": 1}  # distinct, so a misrouted span changes a count
    with (database(backend, tmp_path) as db, langfuse_projects("A", "B", "C", "operator") as projects,
          running_gateway(gateway_settings(db, success_callback=["langfuse"]), data_dir=tmp_path,
                          env={**operator_env(projects["operator"]), **db.env}) as gw,
          admin_client(gw.base_url) as admin):
        team_id = new_team(admin, team_alias="one-team")
        ok(admin.post(f"/team/{team_id}/callback", json=projects["A"].callback_body()))
        keys = {"k1": new_key(admin, team_id=team_id, metadata={"logging": logging_to(projects["B"])})["key"],
                "k2": new_key(admin, team_id=team_id)["key"],
                "solo": new_key(admin, metadata={"logging": logging_to(projects["C"])})["key"],
                "plain": new_key(admin)["key"]}
        for label, count in counts.items():
            send_chats(gw.base_url, keys[label], label, count)
        projects["B"].wait_for(lambda s: len(s) >= counts["k1"])
        projects["A"].wait_for(lambda s: len(s) >= counts["k2"])
        projects["C"].wait_for(lambda s: len(s) >= counts["solo"])
        projects["operator"].wait_for(lambda s: len(s) >= counts["plain"])
    assert names(projects["B"]) == {"k1": 3}
    assert names(projects["A"]) == {"k2": 2}
    assert names(projects["C"]) == {"solo": 4}
    assert names(projects["operator"]) == {"plain": 1}
    for project in projects.values():
        project.assert_wire_format()  # each project got its own Basic auth, nobody else's
    assert set(projects["B"].team_ids()) == {team_id}
    assert all("spangate.key.hash" not in s["attributes"] for p in projects.values() for s in p.spans())


TYPOS = [
    ({"callback_name": "langfuze"}, "metadata.logging[0].callback_name", "langfuze"),
    ({"callback_vars": {"langfuse_secret_kye": "x"}}, "metadata.logging[0].callback_vars", "langfuse_secret_kye"),
    ({"callback_type": "sucess"}, "metadata.logging[0].callback_type", "callback_type"),
    ({"callback_var": {}}, "metadata.logging[0].callback_var", "callback_var"),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_typos_are_refused_and_nothing_is_saved(backend: str, tmp_path: Path) -> None:
    with (database(backend, tmp_path) as db, langfuse_projects("A", "B") as projects,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env=db.env) as gw,
          admin_client(gw.base_url) as admin):
        good = logging_to(projects["A"])[0]
        for change, param, named in TYPOS:
            entry = {**good, **change}
            if "callback_vars" in change:
                entry["callback_vars"] = {**good["callback_vars"], **change["callback_vars"]}
            error = error_of(admin.post("/key/generate", json={"metadata": {"logging": [entry]}}), 400)
            assert error["param"] == param and named in error["message"], error
        metadata_host = {**good, "callback_vars": {**good["callback_vars"], "langfuse_host": "http://169.254.169.254"}}
        error = error_of(admin.post("/key/generate", json={"metadata": {"logging": [metadata_host]}}), 400)
        assert (error["param"], error["code"]) == ("metadata.logging[0].callback_vars.langfuse_host",
                                                   "callback_url_not_allowed")
        assert error_of(admin.post("/key/generate", json={"metadata": {"logging": {"callback_name": "langfuse"}}}),
                        400)["param"] == "metadata.logging"
        assert error_of(admin.post("/key/generate", json={"metadata": {"turn_off_message_logging": "yes"}}),
                        400)["param"] == "metadata.turn_off_message_logging"
        assert ok(admin.get("/key/list"))["total_count"] == 0, "a refused /key/generate saved a key"
        # On update: refused too, and the key's logging stays as it was.
        key = new_key(admin, metadata={"logging": [good]})["key"]
        typo = {**good, "callback_vars": {**good["callback_vars"], "langfuse_hots": projects["B"].host}}
        error = error_of(admin.post("/key/update", json={"key": key, "metadata": {"logging": [typo]}}), 400)
        assert "langfuse_hots" in error["message"]
        shown = ok(admin.get("/key/info", params={"key": key}))["info"]["metadata"]["logging"]
        assert shown[0]["callback_vars"]["langfuse_host"] == projects["A"].host
        send_chats(gw.base_url, key, "after-typo")
        projects["A"].wait_for(lambda s: len(s) >= 1)
    assert names(projects["A"]) == {"after-typo": 1} and projects["B"].sink.requests == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_secrets_are_never_shown_nor_stored_in_clear(backend: str, tmp_path: Path) -> None:
    with (database(backend, tmp_path) as db, langfuse_projects("A", "B") as projects,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env=db.env) as gw,
          admin_client(gw.base_url) as admin):
        secret = projects["B"].secret_key
        team_id = new_team(admin)
        generated = admin.post("/key/generate", json={"team_id": team_id, "key_alias": "ci",
                                                      "metadata": {"logging": logging_to(projects["B"]), "env": "ci"}})
        key, token = ok(generated)["key"], generated.json()["token"]
        updated = admin.post("/key/update", json={"key": token, "key_alias": "ci-2"})
        answers = [generated, updated,
                   admin.get("/key/info", params={"key": key}),
                   admin.get("/key/info", headers={"x-spangate-key": key}),
                   admin.post("/key/info", json={"key": key}),
                   admin.get("/key/list", params={"page": 1, "size": 10}),
                   admin.get("/key/list", params={"team_id": team_id}),
                   admin.get("/team/info", params={"team_id": team_id})]
        for answer in answers:
            assert answer.status_code == 200, answer.text
            assert secret not in answer.text, answer.request.url
            assert MASK in answer.text, answer.request.url
        listed = ok(answers[5])
        assert (listed["total_count"], listed["current_page"], listed["total_pages"]) == (1, 1, 1)
        (shown,) = listed["keys"]
        assert key not in answers[5].text  # the hash and a prefix only, never the key
        assert (shown["token"], shown["key_alias"], shown["team_id"]) == (token, "ci-2", team_id)
        assert shown["metadata"] == {"env": "ci", "logging": [{
            "callback_name": "langfuse", "callback_type": "success",
            "callback_vars": {"langfuse_public_key": projects["B"].public_key, "langfuse_secret_key": MASK,
                              "langfuse_host": projects["B"].host}}]}
        # Posting back what GET showed must not store the mask as the secret.
        error = error_of(admin.post("/key/update", json={"key": key, "metadata": shown["metadata"]}), 400)
        assert error["code"] == "masked_value"
        for bad in ({"page": 0}, {"size": 101}, {"size": "ten"}):
            error_of(admin.get("/key/list", params=bad), 400)
        if backend == "sqlite":
            assert secret.encode() not in db.raw_bytes()


@pytest.mark.parametrize("backend", BACKENDS)
def test_key_update_replaces_the_keys_logging(backend: str, tmp_path: Path) -> None:
    with (database(backend, tmp_path) as db, langfuse_projects("A", "B", "C") as projects,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env=db.env) as gw,
          admin_client(gw.base_url) as admin):
        team_id = new_team(admin)
        ok(admin.post(f"/team/{team_id}/callback", json=projects["A"].callback_body()))
        key = new_key(admin, team_id=team_id, metadata={"logging": logging_to(projects["B"])})["key"]
        send_chats(gw.base_url, key, "on-B")
        projects["B"].wait_for(lambda s: len(s) >= 1)
        ok(admin.post("/key/update", json={"key": key, "metadata": {"logging": logging_to(projects["C"])}}))
        send_chats(gw.base_url, key, "on-C")
        projects["C"].wait_for(lambda s: len(s) >= 1)
        # Metadata without ``logging`` leaves the entries as they are.
        kept = ok(admin.post("/key/update", json={"key": key, "metadata": {"owner": "ops"}}))
        assert [e["callback_vars"]["langfuse_host"] for e in kept["metadata"]["logging"]] == [projects["C"].host]
        assert kept["metadata"]["owner"] == "ops"
        send_chats(gw.base_url, key, "still-C")
        projects["C"].wait_for(lambda s: len(s) >= 2)
        # An empty list removes them: the key is back on its team's project.
        ok(admin.post("/key/update", json={"key": key, "metadata": {"logging": []}}))
        assert "logging" not in ok(admin.post("/key/info", json={"key": key}))["info"]["metadata"]
        send_chats(gw.base_url, key, "back-on-A")
        projects["A"].wait_for(lambda s: len(s) >= 1)
        error_of(admin.post("/key/update", json={"key": "sk-no-such-key", "key_alias": "x"}), 404)
    assert names(projects["B"]) == {"on-B": 1}
    assert names(projects["C"]) == {"on-C": 1, "still-C": 1}
    assert names(projects["A"]) == {"back-on-A": 1}


def payloads(*sinks: HttpSink) -> bytes:
    return b"".join(req.body for sink in sinks for req in sink.requests)


@pytest.mark.parametrize("backend", BACKENDS)
def test_turn_off_message_logging_by_key_metadata_and_by_callback_var(backend: str, tmp_path: Path) -> None:
    prompts = {name: f"secret prompt {name} 7f3a"
               for name in ("meta", "key-var", "team-var", "team-meta", "teammate", "open")}
    with (database(backend, tmp_path) as db, langfuse_projects("A", "B", "C") as projects,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env=db.env) as gw,
          admin_client(gw.base_url) as admin):
        team_id, quiet_team = new_team(admin), new_team(admin)
        ok(admin.post(f"/team/{team_id}/callback", json=projects["A"].callback_body()))
        quiet = projects["C"].callback_body()
        quiet["callback_vars"]["turn_off_message_logging"] = True
        ok(admin.post(f"/team/{quiet_team}/callback", json=quiet))
        meta_team = new_team(admin, metadata={"turn_off_message_logging": True})
        ok(admin.post(f"/team/{meta_team}/callback", json=projects["C"].callback_body()))
        keys = {
            "meta": new_key(admin, team_id=team_id, metadata={"turn_off_message_logging": True,
                                                              "logging": logging_to(projects["B"])})["key"],
            "key-var": new_key(admin, team_id=team_id, metadata={
                "logging": logging_to(projects["B"], turn_off_message_logging=True)})["key"],
            "team-var": new_key(admin, team_id=quiet_team)["key"],
            "team-meta": new_key(admin, team_id=meta_team)["key"],
            "teammate": new_key(admin, team_id=team_id)["key"],
            "open": new_key(admin, team_id=team_id, metadata={"logging": logging_to(projects["B"])})["key"]}
        for name, key in keys.items():
            send_chats(gw.base_url, key, name, prompt=prompts[name])
        projects["B"].wait_for(lambda s: len(s) >= 3)
        projects["A"].wait_for(lambda s: len(s) >= 1)
        projects["C"].wait_for(lambda s: len(s) >= 2)
    everything = payloads(*(p.sink for p in projects.values()))
    for name in ("meta", "key-var", "team-var", "team-meta"):
        assert prompts[name].encode() not in everything, name
    # Capture is on for the others, so the check above can fail: the same sinks carry their prompts.
    assert prompts["teammate"].encode() in payloads(projects["A"].sink)
    assert prompts["open"].encode() in payloads(projects["B"].sink)
    assert names(projects["B"]) == {"meta": 1, "key-var": 1, "open": 1}


def test_a_key_entry_may_not_send_its_stored_secret_elsewhere(tmp_path: Path) -> None:
    """The credential-family rule on /key/update: moving an entry's endpoint must bring its secret
    headers again; resent, they go to the new endpoint and nothing more reaches the old one."""
    token = "hook-token-4c1d9e"
    with (database("sqlite", tmp_path) as db, HttpSink() as first, HttpSink() as second,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env=db.env) as gw,
          admin_client(gw.base_url) as admin):

        def generic(sink: HttpSink, **extra: str) -> dict[str, Any]:
            return {"logging": [{"callback_name": "generic", "callback_type": "success",
                                 "callback_vars": {"generic_logger_endpoint": sink.url + "/in", **extra}}]}

        key = new_key(admin, metadata=generic(first, generic_logger_headers=f"X-Hook-Token={token}"))["key"]
        moved = admin.post("/key/update", json={"key": key, "metadata": generic(second)})
        error = error_of(moved, 400)
        assert (error["param"], error["code"]) == ("metadata.logging[0].callback_vars.generic_logger_endpoint",
                                                   "secret_must_be_resent")
        assert "generic_logger_headers" in error["message"]
        shown = ok(admin.get("/key/info", params={"key": key}))["info"]["metadata"]["logging"][0]
        assert shown["callback_vars"]["generic_logger_endpoint"] == first.url + "/in"  # nothing changed
        ok(admin.post("/key/update", json={"key": key, "metadata": generic(
            second, generic_logger_headers=f"X-Hook-Token={token}")}))
        send_chats(gw.base_url, key, "moved")
        second.wait_for(lambda reqs: len(reqs) >= 1)
    assert first.requests == []
    assert all(r.headers["x-hook-token"] == token for r in second.requests)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_second_instance_follows_key_logging_set_through_the_first(backend: str, tmp_path: Path) -> None:
    with (database(backend, tmp_path) as db, langfuse_projects("A", "B", "C") as projects, ExitStack() as stack):
        one, two = (stack.enter_context(running_gateway(gateway_settings(db), env=db.env, data_dir=tmp_path / name))
                    for name in ("one", "two"))
        probes = itertools.count()

        def probe_reaches(project: LangfuseProject) -> bool:
            label = f"probe-{next(probes)}"
            assert chat(two.base_url, key, test=label).status_code == 200
            # Any probe will do: delivery is asynchronous, so the one just sent may still be on its way.
            return any(s["attributes"].get("langfuse.trace.metadata.test", "").startswith("probe-")
                       for s in project.spans())

        with admin_client(one.base_url) as admin:
            team_id = new_team(admin)
            ok(admin.post(f"/team/{team_id}/callback", json=projects["A"].callback_body()))
            key = new_key(admin, team_id=team_id, metadata={"logging": logging_to(projects["B"])})["key"]
            poll(lambda: chat(two.base_url, key).status_code == 200, timeout=5)
            poll(lambda: probe_reaches(projects["B"]), timeout=5, interval=0.05)
            ok(admin.post("/key/update", json={"key": key, "metadata": {"logging": logging_to(projects["C"])}}))
            poll(lambda: probe_reaches(projects["C"]), timeout=5, interval=0.05)
    assert projects["A"].sink.requests == [], "the key's spans reached its team's project"
