"""The generic webhook through the real gateway: globally from the env (the seed's form), per team
through ``POST /team/{id}/callback``, and a webhook that fails breaking neither calls nor other
destinations. Official openai client; loopback sinks; counts checked after the gateway stopped."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import openai
import pytest

from app.api.admin import MASK
from tests.support.gateway import running_gateway
from tests.support.sinks import HttpSink, Reply, always
from tests.support.teams import (
    MODEL,
    SALT_KEY,
    admin_client,
    database,
    error_of,
    gateway_settings,
    mock_models,
    openai_client,
    poll,
)

PROVIDER_KEY = "sk-provider-SECRET-5f1c"
HOOK_TOKEN = "hook-token-SECRET-77aa"
PRICES = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}


def settings(db: Any, **litellm: Any) -> dict[str, Any]:
    config = gateway_settings(db, **litellm)
    config["model_list"] = [{**m, "litellm_params": {**m["litellm_params"], "api_key": PROVIDER_KEY},
                             "model_info": PRICES} for m in mock_models()]
    return config


def records(sink: HttpSink) -> list[dict[str, Any]]:
    out = []
    for request in sink.requests:
        out.extend(json.loads(line)["data"] for line in request.body.splitlines() if line.strip())
    return out


def team_with_key(admin: Any, alias: str) -> tuple[str, str]:
    team_id = admin.post("/team/new", json={"team_alias": alias}).json()["team_id"]
    key = admin.post("/key/generate", json={"team_id": team_id, "key_alias": f"{alias}-key"}).json()["key"]
    return team_id, key


def test_global_form_from_the_env_logs_success_and_failure(tmp_path: Path) -> None:
    with (database("sqlite", tmp_path) as db, HttpSink() as hook,
          running_gateway(settings(db, callbacks=["generic_api"]), data_dir=tmp_path,
                          env={"GENERIC_LOGGER_ENDPOINT": hook.url + "/log-event",
                               "GENERIC_LOGGER_HEADERS": f"Authorization=Bearer {HOOK_TOKEN},X-Env=test",
                               "SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        team_id, key = team_with_key(admin, "search")
        with openai_client(gw.base_url, key) as client:
            reply = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "This is a test"}], user="ishaan-2",
                temperature=0.7, extra_body={"metadata": {"generation_name": "g1"}})
            with pytest.raises(openai.NotFoundError):
                client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
        hook.wait_for(lambda reqs: len(reqs) >= 2)
    assert len(hook.requests) == 2  # one POST per call
    for request in hook.requests:
        assert (request.method, request.path) == ("POST", "/log-event")
        assert request.headers["authorization"] == f"Bearer {HOOK_TOKEN}"
        assert request.headers["x-env"] == "test"
        assert PROVIDER_KEY.encode() not in request.body
    ok, failed = sorted(records(hook), key=lambda r: r["status"] == "failure")
    assert ok["id"] == reply.id and ok["status"] == "success" and ok["error"] is None
    assert (ok["call_type"], ok["model"], ok["user"]) == ("acompletion", MODEL, "ishaan-2")
    assert ok["cost"] == pytest.approx(reply.usage.prompt_tokens * 1e-6 + reply.usage.completion_tokens * 2e-6)
    assert ok["modelParameters"] == {"temperature": 0.7, "user": "ishaan-2"}
    assert ok["messages"] == [{"role": "user", "content": "This is a test"}]
    assert ok["response"]["choices"][0]["message"]["content"] == reply.choices[0].message.content
    assert ok["usage"]["total_tokens"] == reply.usage.total_tokens
    assert ok["metadata"] == {"generation_name": "g1"}
    assert (ok["team_id"], ok["team_alias"], ok["key_alias"]) == (team_id, "search", "search-key")
    assert failed["status"] == "failure" and failed["model"] == "no-such-model"
    assert failed["error"]["status_code"] == 404 and failed["key_alias"] == "search-key"


def test_team_callback_batches_masks_and_encrypts_its_headers(tmp_path: Path) -> None:
    with (database("sqlite", tmp_path) as db, HttpSink() as hook,
          running_gateway(settings(db), data_dir=tmp_path, env={"SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        team_id, key = team_with_key(admin, "batchers")
        body = {"callback_name": "generic", "callback_type": "success_and_failure",
                "callback_vars": {"generic_logger_endpoint": hook.url + "/bulk",
                                  "generic_logger_headers": f"X-Hook-Token={HOOK_TOKEN}",
                                  "generic_logger_format": "ndjson"}}
        assert admin.post(f"/team/{team_id}/callback", json=body).status_code == 200
        shown = admin.get(f"/team/{team_id}/callback").json()["data"]
        assert shown["callback_vars"]["generic_logger_headers"] == MASK
        assert shown["callback_vars"]["generic_logger_endpoint"] == hook.url + "/bulk"
        assert HOOK_TOKEN not in db.raw_dump()
        with openai_client(gw.base_url, key) as client:
            for i in range(3):
                client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"hi {i}"}])
        hook.wait_for(lambda _reqs: len(records(hook)) >= 3)
    assert {r.path for r in hook.requests} == {"/bulk"}
    assert all(r.headers["content-type"] == "application/x-ndjson" for r in hook.requests)
    assert all(r.headers["x-hook-token"] == HOOK_TOKEN for r in hook.requests)
    assert sorted(r["messages"][0]["content"] for r in records(hook)) == ["hi 0", "hi 1", "hi 2"]  # once each
    assert {r["team_id"] for r in records(hook)} == {team_id}


def test_a_stored_token_is_only_sent_where_it_was_stored(tmp_path: Path) -> None:
    """Moving a callback to another endpoint must bring its secret headers again (issue #10: a
    stored secret is only sent where it was sent when stored); resent, they go to the new one."""
    with (database("sqlite", tmp_path) as db, HttpSink() as first, HttpSink() as second,
          running_gateway(settings(db), data_dir=tmp_path, env={"SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        team_id, key = team_with_key(admin, "movers")

        def post(sink: HttpSink, **extra: str) -> Any:
            return admin.post(f"/team/{team_id}/callback", json={
                "callback_name": "generic", "callback_type": "success",
                "callback_vars": {"generic_logger_endpoint": sink.url + "/in", **extra}})

        post(first, generic_logger_headers=f"X-Hook-Token={HOOK_TOKEN}").raise_for_status()
        moved = post(second)
        assert moved.status_code == 400, moved.text
        assert moved.json()["error"]["param"] == "callback_vars.generic_logger_endpoint"
        assert moved.json()["error"]["code"] == "secret_must_be_resent"
        assert "generic_logger_headers" in moved.json()["error"]["message"]
        shown = admin.get(f"/team/{team_id}/callback").json()["data"]["callback_vars"]
        assert shown["generic_logger_endpoint"] == first.url + "/in"  # nothing changed
        post(second, generic_logger_headers=f"X-Hook-Token={HOOK_TOKEN}").raise_for_status()
        with openai_client(gw.base_url, key) as client:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        second.wait_for(lambda reqs: len(reqs) >= 1)
    assert first.requests == []
    assert all(r.headers["x-hook-token"] == HOOK_TOKEN for r in second.requests)


def test_a_stored_secret_left_out_at_the_same_endpoint_is_refused_not_dropped(tmp_path: Path) -> None:
    """Issue 20, item 16: re-posting a callback without its optional secret headers used to be a 200
    that dropped them silently. It is a 400 naming the var; the stored headers stay and are sent."""
    with (database("sqlite", tmp_path) as db, HttpSink() as hook,
          running_gateway(settings(db), data_dir=tmp_path, env={"SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        team_id, key = team_with_key(admin, "keepers")

        def post(**extra: str) -> Any:
            return admin.post(f"/team/{team_id}/callback", json={
                "callback_name": "generic", "callback_type": "success",
                "callback_vars": {"generic_logger_endpoint": hook.url + "/in", **extra}})

        post(generic_logger_headers=f"X-Hook-Token={HOOK_TOKEN}").raise_for_status()
        error = error_of(post(generic_logger_format="ndjson"), 400)
        assert (error["param"], error["code"]) == ("callback_vars.generic_logger_headers", "secret_must_be_resent")
        assert "would drop it" in error["message"] and HOOK_TOKEN not in error["message"]
        shown = admin.get(f"/team/{team_id}/callback").json()["data"]["callback_vars"]
        assert (shown["generic_logger_headers"], shown.get("generic_logger_format")) == (MASK, None)  # unchanged
        with openai_client(gw.base_url, key) as client:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        hook.wait_for(lambda reqs: len(reqs) >= 1)
        assert hook.requests[0].headers["x-hook-token"] == HOOK_TOKEN  # the stored secret is still sent
        assert post(generic_logger_format="ndjson", generic_logger_headers=f"X-Hook-Token={HOOK_TOKEN}"
                    ).status_code == 200  # sent again: a plain replacement
        admin.delete(f"/team/{team_id}/callback/generic").raise_for_status()
        assert post().status_code == 200  # deleted first: the admin meant to drop the headers


@pytest.mark.parametrize(("callback_vars", "param", "names"), [
    ({}, "callback_vars", "generic_logger_endpoint"),
    ({"generic_logger_endpoint": "http://127.0.0.1:9/x", "generic_logger_token": "t"}, "callback_vars",
     "generic_logger_token"),
    ({"generic_logger_endpoint": "http://127.0.0.1:9/x", "generic_logger_format": "xml"}, "callback_vars",
     "generic_logger_format"),
    ({"generic_logger_endpoint": "http://169.254.169.254/latest"}, "callback_vars.generic_logger_endpoint",
     "generic_logger_endpoint"),
])
def test_bad_team_vars_are_a_400_naming_the_var(tmp_path: Path, callback_vars: dict[str, Any], param: str,
                                                names: str) -> None:
    with (database("sqlite", tmp_path) as db,
          running_gateway(settings(db), data_dir=tmp_path, env={"SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        team_id = admin.post("/team/new", json={}).json()["team_id"]
        answer = admin.post(f"/team/{team_id}/callback", json={
            "callback_name": "generic_api", "callback_type": "success", "callback_vars": callback_vars})
        error = error_of(answer, 400)
        assert names in error["message"] and error["param"] == param
        assert admin.get(f"/team/{team_id}/callback").json()["data"]["success_callbacks"] == []


def test_a_failing_webhook_breaks_no_call_and_no_other_destination(tmp_path: Path) -> None:
    """One team logs to a webhook answering 500 and to one answering 429; a second webhook of the
    operator's (global) keeps receiving every call, and every call succeeds."""
    with (database("sqlite", tmp_path) as db, HttpSink(always(500)) as broken,
          HttpSink(lambda _req: Reply(429, b"slow down", {"Retry-After": "0"})) as limited,
          HttpSink() as operator,
          running_gateway(settings(db, success_callback=["athina"]), data_dir=tmp_path,
                          env={"ATHINA_API_KEY": "ak-op", "ATHINA_BASE_URL": operator.url,
                               "SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        team_id, key = team_with_key(admin, "unlucky")
        for name, sink in (("generic", broken), ("generic_api", limited)):
            admin.post(f"/team/{team_id}/callback", json={
                "callback_name": name, "callback_type": "success",
                "callback_vars": {"generic_logger_endpoint": sink.url + "/hook"}}).raise_for_status()
        with openai_client(gw.base_url, key) as client:
            for i in range(4):
                assert client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": str(i)}])
        operator.wait_for(lambda reqs: len(reqs) >= 4)
        broken.wait_for(lambda reqs: len(reqs) >= 2)  # it was tried, and retried
        limited.wait_for(lambda reqs: len(reqs) >= 2)
        health = {h["name"]: h for h in admin.get("/health/destinations").json()["destinations"]
                  if h["team"] == team_id}
    assert len(operator.requests) == 4
    assert {name: h["last_error"] for name, h in health.items()} == {"generic": "HTTP 500", "generic_api": "HTTP 429"}
    assert all(h["delivered"] == 0 and h["retried"] >= 2 for h in health.values())


def echo_headers(status: int) -> Any:
    """A webhook that refuses and quotes the request's headers back, as some debugging endpoints do."""
    return lambda req: Reply(status, json.dumps({"error": "bad event", "headers": req.headers}).encode())


def test_a_dead_letter_is_logged_with_its_status_never_the_answer(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every record, whatever level earlier tests left
    with (database("sqlite", tmp_path) as db, HttpSink(echo_headers(400)) as hook,
          running_gateway(settings(db), data_dir=tmp_path, env={"SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        team_id, key = team_with_key(admin, "echoed")
        admin.post(f"/team/{team_id}/callback", json={
            "callback_name": "generic", "callback_type": "success",
            "callback_vars": {"generic_logger_endpoint": hook.url + "/in",
                              "generic_logger_headers": f"X-Hook-Token={HOOK_TOKEN}"}}).raise_for_status()
        with openai_client(gw.base_url, key) as client:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        poll(lambda: "spans dead-lettered:" in caplog.text, timeout=10)
        [health] = [h for h in admin.get("/health/destinations").json()["destinations"]
                    if (h["team"], h["name"]) == (team_id, "generic")]
    assert hook.requests[0].headers["x-hook-token"] == HOOK_TOKEN  # so its answer quoted the token
    [line] = [r.getMessage() for r in caplog.records if "spans dead-lettered:" in r.getMessage()]
    assert line.endswith(": 1 spans dead-lettered: HTTP 400"), line
    assert HOOK_TOKEN not in caplog.text and "bad event" not in caplog.text
    assert (health["dead_lettered"], health["last_error"]) == (1, "HTTP 400")
