"""Athina through the real gateway: the seed's ``success_callback: ["athina"]`` with ``ATHINA_API_KEY``
(and ``ATHINA_BASE_URL`` aimed at a loopback stand-in), and per team with its own key, masked in GET
and encrypted at rest. The provider key never reaches Athina."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.api.admin import MASK
from tests.e2e.destinations.test_generic_e2e import PROVIDER_KEY, settings, team_with_key
from tests.support.gateway import running_gateway
from tests.support.sinks import HttpSink, Reply
from tests.support.teams import MODEL, SALT_KEY, admin_client, database, error_of, openai_client

INFERENCE = "/api/v1/log/inference"
TEAM_KEY = "athina-team-SECRET-31c0"


def bodies(sink: HttpSink) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in sink.requests]


def test_seed_global_form_logs_each_successful_call(tmp_path: Path) -> None:
    with (database("sqlite", tmp_path) as db, HttpSink() as athina,
          running_gateway(settings(db, success_callback=["athina"]), data_dir=tmp_path,
                          env={"ATHINA_API_KEY": "ak-operator", "ATHINA_BASE_URL": athina.url,
                               "SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        team_id, key = team_with_key(admin, "search")
        with openai_client(gw.base_url, key) as client:
            reply = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "which llm are you"}], user="u-1",
                extra_body={"metadata": {"environment": "staging", "session_id": "s-9"}})
            stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "stream"}],
                                                    stream=True, stream_options={"include_usage": True})
            streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        athina.wait_for(lambda reqs: len(reqs) >= 2)
    assert [(r.method, r.path) for r in athina.requests] == [("POST", INFERENCE)] * 2
    assert all(r.headers["athina-api-key"] == "ak-operator" for r in athina.requests)
    assert all(PROVIDER_KEY.encode() not in r.raw_body for r in athina.requests)
    first, second = sorted(bodies(athina), key=lambda b: b["prompt"][0]["content"] == "stream")
    assert (first["language_model_id"], first["status_code"], first["customer_user_id"]) == (MODEL, 200, "u-1")
    assert first["prompt"] == [{"role": "user", "content": "which llm are you"}]
    assert first["response"]["id"] == reply.id
    assert first["response"]["choices"][0]["message"]["content"] == reply.choices[0].message.content
    assert (first["prompt_tokens"], first["completion_tokens"]) == (reply.usage.prompt_tokens,
                                                                    reply.usage.completion_tokens)
    assert (first["environment"], first["session_id"], first["user_query"]) == ("staging", "s-9", "which llm are you")
    assert first["custom_attributes"]["team_id"] == team_id
    assert first["custom_attributes"]["key_alias"] == "search-key"
    assert second["response"]["choices"][0]["message"]["content"] == streamed


def test_team_key_is_masked_encrypted_and_used_and_bad_vars_are_400(tmp_path: Path) -> None:
    with (database("sqlite", tmp_path) as db, HttpSink() as athina,
          running_gateway(settings(db), data_dir=tmp_path, env={"SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        team_id, key = team_with_key(admin, "evals")
        for callback_vars, name in (({}, "athina_api_key"),
                                    ({"athina_api_key": "k", "athina_host": "h"}, "athina_host"),
                                    ({"athina_api_key": "k", "athina_base_url": "ftp://x"}, "athina_base_url")):
            error = error_of(admin.post(f"/team/{team_id}/callback", json={
                "callback_name": "athina", "callback_type": "success", "callback_vars": callback_vars}), 400)
            assert name in error["message"]
        answer = admin.post(f"/team/{team_id}/callback", json={
            "callback_name": "athina", "callback_type": "success_and_failure",
            "callback_vars": {"athina_api_key": TEAM_KEY, "athina_base_url": athina.url}})
        assert answer.status_code == 200, answer.text
        shown = admin.get(f"/team/{team_id}/callback").json()["data"]
        assert shown["callback_vars"] == {"athina_api_key": MASK, "athina_base_url": athina.url}
        assert TEAM_KEY not in db.raw_dump()
        tested = admin.post(f"/team/{team_id}/callback/test").json()
        assert (tested["status"], tested["results"][0]["callback_name"]) == ("success", "athina")
        athina.wait_for(lambda reqs: len(reqs) >= 1)
        athina.requests.clear()  # the synthetic span: only the calls below are counted
        with openai_client(gw.base_url, key) as client:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        athina.wait_for(lambda reqs: len(reqs) >= 1)
        failed = admin.post(f"{gw.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                            json={"model": MODEL, "messages": "not a list"})
        assert failed.status_code == 400
        athina.wait_for(lambda reqs: len(reqs) >= 2)
    assert all(r.headers["athina-api-key"] == TEAM_KEY for r in athina.requests)
    ok, bad = sorted(bodies(athina), key=lambda b: b["status_code"] != 200)
    assert ok["custom_attributes"]["team_id"] == team_id and "error" not in ok
    assert (bad["status_code"], bad["response"]) == (400, "") and bad["error"]


@pytest.mark.parametrize("status", [500, 429])
def test_athina_down_breaks_no_call_and_no_other_destination(tmp_path: Path, status: int) -> None:
    with (database("sqlite", tmp_path) as db, HttpSink(lambda _req: Reply(status, b"down")) as athina,
          HttpSink() as hook,
          running_gateway(settings(db, success_callback=["athina", "generic"]), data_dir=tmp_path,
                          env={"ATHINA_API_KEY": "ak", "ATHINA_BASE_URL": athina.url,
                               "GENERIC_LOGGER_ENDPOINT": hook.url + "/x", "SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        _, key = team_with_key(admin, "t")
        with openai_client(gw.base_url, key) as client:
            for i in range(3):
                assert client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": str(i)}])
        hook.wait_for(lambda reqs: len(reqs) >= 3)
        athina.wait_for(lambda reqs: len(reqs) >= 2)  # tried, and retried
    assert len(hook.requests) == 3
