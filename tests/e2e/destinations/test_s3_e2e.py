"""The S3 archive end to end: the real gateway, the official openai client, boto3 against moto's server.

Objects are read back after the gateway has stopped: stopping flushes delivery, so a missing or a
stray object would be visible by then.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.teams.secrets import MASK
from tests.support.aws import KEY_ID, REGION, SECRET, FaultyAws, moto_server, new_bucket, s3_error, s3_objects
from tests.support.gateway import running_gateway
from tests.support.teams import (
    MODEL,
    SALT_KEY,
    admin_client,
    database,
    gateway_settings,
    openai_client,
)


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as url:
        yield url


def chats(base_url: str, key: str, count: int, tag: str) -> None:
    with openai_client(base_url, key) as client:
        for i in range(count):
            reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"{tag} #{i}"}],
                                                   extra_body={"metadata": {"session_id": f"s-{tag}"}})
            assert reply.choices[0].message.content


def records(objects: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for key, obj in objects.items():
        body = gzip.decompress(obj["body"]) if key.endswith(".gz") else obj["body"]
        out += [json.loads(line) for line in body.decode().splitlines()]
    return out


def impatient(config: dict[str, Any]) -> dict[str, Any]:
    """A broken destination never drains: stop without waiting the default 10 s for it."""
    return {**config, "spangate_settings": {**config["spangate_settings"], "shutdown_flush_seconds": 0.5}}


def team_vars(endpoint: str, bucket: str, **extra: str) -> dict[str, str]:
    return {"s3_bucket_name": bucket, "s3_region_name": REGION, "s3_endpoint_url": endpoint,
            "s3_aws_access_key_id": KEY_ID, "s3_aws_secret_access_key": SECRET, **extra}


def test_global_form_from_s3_callback_params_and_the_environment(moto: str, tmp_path: Path) -> None:
    bucket = new_bucket(moto)
    config = {"model_list": [{"model_name": MODEL, "litellm_params": {"model": f"mock/{MODEL}"}}],
              "litellm_settings": {"success_callback": ["s3"], "s3_callback_params": {
                  "s3_bucket_name": bucket, "s3_region_name": REGION, "s3_path": "litellm-logs",
                  "s3_aws_access_key_id": "os.environ/AWS_ACCESS_KEY_ID",
                  "s3_aws_secret_access_key": "os.environ/AWS_SECRET_ACCESS_KEY",
                  "s3_endpoint_url": "os.environ/S3_ENDPOINT"}}}
    env = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "S3_ENDPOINT": moto}
    with running_gateway(config, data_dir=tmp_path, env=env) as gw:
        chats(gw.base_url, "anything", 3, "global")
    objects = s3_objects(moto, bucket)
    assert len(objects) == 3
    assert all(k.startswith("litellm-logs/team=__HIVE_DEFAULT_PARTITION__/dt=") and k.endswith(".json")
               for k in objects)
    assert {o["content_type"] for o in objects.values()} == {"application/json"}
    got = records(objects)
    assert {r["model"] for r in got} == {MODEL} and {r["status"] for r in got} == {"success"}
    assert sorted(r["messages"][0]["parts"][0]["content"] for r in got) == ["global #0", "global #1", "global #2"]
    assert all(r["response"] and r["usage"]["total_tokens"] > 0 and r["metadata"] == {"session_id": "s-global"}
               for r in got)


def test_two_teams_archive_to_their_own_buckets_and_a_throttled_bucket_loses_nothing(moto: str,
                                                                                     tmp_path: Path) -> None:
    buckets = {"a": new_bucket(moto), "b": new_bucket(moto)}
    counts = {"a": 4, "b": 3}
    # Team a's bucket answers SlowDown three times first: the delivery layer retries until it takes them.
    with (database("sqlite", tmp_path) as db, FaultyAws(moto, [s3_error("SlowDown", 503)] * 3) as throttled,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env={"SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        teams, keys = {}, {}
        for name, endpoint, extra in (("a", throttled.url, {"s3_batch": "ndjson"}), ("b", moto, {"s3_path": "b"})):
            teams[name] = admin.post("/team/new", json={"team_alias": f"team-{name}"}).json()["team_id"]
            body = {"callback_name": "s3", "callback_type": "success",
                    "callback_vars": team_vars(endpoint, buckets[name], **extra)}
            assert admin.post(f"/team/{teams[name]}/callback", json=body).status_code == 200
            keys[name] = admin.post("/key/generate", json={"team_id": teams[name]}).json()["key"]
        shown = admin.get(f"/team/{teams['a']}/callback").json()["data"]["callback_vars"]
        assert shown["s3_aws_secret_access_key"] == MASK and shown["s3_bucket_name"] == buckets["a"]
        assert SECRET not in db.raw_dump()  # encrypted at rest
        for name, count in counts.items():
            chats(gw.base_url, keys[name], count, name)
    assert len(throttled.requests) > 3  # the three SlowDowns, then what got through
    for name, count in counts.items():
        got = records(s3_objects(moto, buckets[name]))
        assert sorted(r["messages"][0]["parts"][0]["content"] for r in got) == [f"{name} #{i}" for i in range(count)]
        assert {(r["team_id"], r["team_alias"]) for r in got} == {(teams[name], f"team-{name}")}
    assert all(k.startswith(f"b/team={teams['b']}/dt=") for k in s3_objects(moto, buckets["b"]))
    assert all(k.endswith(".ndjson.gz") for k in s3_objects(moto, buckets["a"]))


@pytest.mark.parametrize(("callback_vars", "message"), [
    ({"s3_bucket_name": "logs", "s3_region": "eu-west-1", "s3_aws_access_key_id": KEY_ID,
      "s3_aws_secret_access_key": SECRET}, "s3_region"),
    ({"s3_aws_access_key_id": KEY_ID, "s3_aws_secret_access_key": SECRET}, "s3_bucket_name"),
    ({"s3_bucket_name": "logs"}, "s3_aws_access_key_id"),
    ({"s3_bucket_name": "logs", "s3_aws_access_key_id": KEY_ID, "s3_aws_secret_access_key": SECRET,
      "s3_endpoint_url": "http://169.254.169.254"}, "s3_endpoint_url"),
])
def test_bad_team_vars_are_a_400_naming_the_var(tmp_path: Path, callback_vars: dict[str, str],
                                                message: str) -> None:
    with (database("sqlite", tmp_path) as db,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env={"SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        team_id = admin.post("/team/new", json={}).json()["team_id"]
        reply = admin.post(f"/team/{team_id}/callback", json={"callback_name": "s3", "callback_type": "success",
                                                              "callback_vars": callback_vars})
    assert reply.status_code == 400, reply.text
    assert message in reply.json()["error"]["message"]


def test_a_bucket_that_always_fails_breaks_no_request_and_no_other_destination(moto: str, tmp_path: Path) -> None:
    good = new_bucket(moto)
    with (database("sqlite", tmp_path) as db, FaultyAws(moto, [s3_error("InternalError", 500)] * 1000) as broken,
          running_gateway(impatient(gateway_settings(db, success_callback=["s3"],
                                                     s3_callback_params=team_vars(moto, good))),
                          data_dir=tmp_path, env={"SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        team_id = admin.post("/team/new", json={}).json()["team_id"]
        body = {"callback_name": "s3", "callback_type": "success",
                "callback_vars": team_vars(broken.url, "broken-bucket")}
        assert admin.post(f"/team/{team_id}/callback", json=body).status_code == 200
        key = admin.post("/key/generate", json={"team_id": team_id}).json()["key"]
        plain = admin.post("/key/generate", json={}).json()["key"]
        chats(gw.base_url, key, 3, "broken")  # each call answered while its archive fails
        chats(gw.base_url, plain, 2, "plain")
        broken.wait_for(lambda reqs: len(reqs) >= 2)
    assert sorted(r["messages"][0]["parts"][0]["content"] for r in records(s3_objects(moto, good))) == [
        "plain #0", "plain #1"]


def test_callback_test_writes_one_synthetic_object_and_reports_a_denied_bucket(moto: str, tmp_path: Path) -> None:
    bucket = new_bucket(moto)
    with (database("sqlite", tmp_path) as db, FaultyAws(moto, [s3_error("AccessDenied", 403)]) as denied,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env={"SPANGATE_SALT_KEY": SALT_KEY}) as gw,
          admin_client(gw.base_url) as admin):
        results = {}
        for name, endpoint, target in (("ok", moto, bucket), ("denied", denied.url, "denied-bucket")):
            team_id = admin.post("/team/new", json={}).json()["team_id"]
            body = {"callback_name": "s3", "callback_type": "success", "callback_vars": team_vars(endpoint, target)}
            assert admin.post(f"/team/{team_id}/callback", json=body).status_code == 200
            [results[name]] = admin.post(f"/team/{team_id}/callback/test").json()["results"]
    assert (results["ok"]["status"], results["denied"]["status"]) == ("success", "failure")
    assert (results["denied"]["http_status"], results["denied"]["detail"]) == (403, "AWS AccessDenied")
    [record] = records(s3_objects(moto, bucket))
    assert record["model"] == "spangate-callback-test"
