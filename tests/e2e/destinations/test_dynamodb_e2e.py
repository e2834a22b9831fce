"""The DynamoDB archive end to end: the real gateway, the official openai client, boto3 against moto.

Items are read back after the gateway has stopped (stopping flushes delivery).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from app.teams.secrets import MASK
from tests.support.aws import (
    KEY_ID,
    REGION,
    SECRET,
    FaultyAws,
    dynamodb_error,
    moto_server,
    new_table,
    table_items,
)
from tests.support.gateway import running_gateway
from tests.support.teams import MODEL, SALT_KEY, admin_client, database, gateway_settings, mock_models, openai_client

EMBED = "text-embedding"


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as url:
        yield url


def calls(base_url: str, key: str, count: int, tag: str) -> None:
    with openai_client(base_url, key) as client:
        for i in range(count):
            reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"{tag} #{i}"}],
                                                   temperature=0.5, user=f"user-{tag}")
            assert reply.choices[0].message.content


def contents(items: list[dict]) -> list[str]:
    return sorted(json.loads(i["messages"])[0]["parts"][0]["content"] for i in items if i["call_type"] == "acompletion")


def test_global_form_reads_the_table_name_and_the_aws_environment(moto: str, tmp_path: Path) -> None:
    table = new_table(moto)
    config = {"model_list": mock_models(MODEL, EMBED),
              "litellm_settings": {"success_callback": ["dynamodb"], "dynamodb_table_name": table}}
    env = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION_NAME": REGION,
           "AWS_ENDPOINT_URL_DYNAMODB": moto}
    with running_gateway(config, data_dir=tmp_path, env=env) as gw:
        assert not gw.config.warnings
        calls(gw.base_url, "anything", 2, "global")
        with openai_client(gw.base_url, "anything") as client:
            assert len(client.embeddings.create(model=EMBED, input=["hi"]).data) == 1
    items = table_items(moto, table)
    assert contents(items) == ["global #0", "global #1"]
    chat = next(i for i in items if i["call_type"] == "acompletion")
    assert {k: chat[k] for k in ("model", "user", "status")} == {"model": MODEL, "user": "user-global",
                                                                "status": "success"}
    assert json.loads(chat["modelParameters"]) == {"temperature": 0.5}
    assert json.loads(chat["response"])[0]["role"] == "assistant"
    assert chat["total_tokens"] == chat["prompt_tokens"] + chat["completion_tokens"] > Decimal(0)
    [embedding] = [i for i in items if i["call_type"] == "aembedding"]
    assert (embedding["model"], json.loads(embedding["messages"])[0]["parts"][0]["content"]) == (EMBED, "hi")


def test_two_teams_write_their_own_tables_and_a_throttled_table_loses_nothing(moto: str, tmp_path: Path) -> None:
    tables = {"a": new_table(moto), "b": new_table(moto)}
    counts = {"a": 3, "b": 2}
    throttled = [dynamodb_error("ProvisionedThroughputExceededException")] * 3
    with (database("sqlite", tmp_path) as db, FaultyAws(moto, throttled) as front,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env={"SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        teams, keys = {}, {}
        for name, endpoint in (("a", front.url), ("b", moto)):
            teams[name] = admin.post("/team/new", json={"team_alias": f"team-{name}"}).json()["team_id"]
            body = {"callback_name": "dynamodb", "callback_type": "success", "callback_vars": {
                "dynamodb_table_name": tables[name], "dynamodb_region_name": REGION,
                "dynamodb_endpoint_url": endpoint, "dynamodb_aws_access_key_id": KEY_ID,
                "dynamodb_aws_secret_access_key": SECRET}}
            reply = admin.post(f"/team/{teams[name]}/callback", json=body)
            assert reply.status_code == 200, reply.text
            keys[name] = admin.post("/key/generate", json={"team_id": teams[name]}).json()["key"]
        shown = admin.get(f"/team/{teams['a']}/callback").json()["data"]["callback_vars"]
        assert shown["dynamodb_aws_secret_access_key"] == MASK and shown["dynamodb_table_name"] == tables["a"]
        assert SECRET not in db.raw_dump()
        for name, count in counts.items():
            calls(gw.base_url, keys[name], count, name)
    assert len(front.requests) > 3  # three throttled answers, then the batch that got through
    for name, count in counts.items():
        items = table_items(moto, tables[name])
        assert contents(items) == [f"{name} #{i}" for i in range(count)]
        assert {(i["team_id"], i["team_alias"]) for i in items} == {(teams[name], f"team-{name}")}


@pytest.mark.parametrize(("callback_vars", "message"), [
    ({"dynamodb_aws_access_key_id": KEY_ID, "dynamodb_aws_secret_access_key": SECRET}, "dynamodb_table_name"),
    ({"dynamodb_table_name": "calls"}, "dynamodb_aws_access_key_id"),
    ({"dynamodb_table_name": "calls", "aws_region_name": REGION, "dynamodb_aws_access_key_id": KEY_ID,
      "dynamodb_aws_secret_access_key": SECRET}, "aws_region_name"),
])
def test_bad_team_vars_are_a_400_naming_the_var(tmp_path: Path, callback_vars: dict[str, str],
                                                message: str) -> None:
    with (database("sqlite", tmp_path) as db,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env={"SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        team_id = admin.post("/team/new", json={}).json()["team_id"]
        reply = admin.post(f"/team/{team_id}/callback", json={"callback_name": "dynamodb",
                                                              "callback_type": "success",
                                                              "callback_vars": callback_vars})
    assert reply.status_code == 400, reply.text
    assert message in reply.json()["error"]["message"]
