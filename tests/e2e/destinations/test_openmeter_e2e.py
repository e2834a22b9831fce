"""OpenMeter end to end: the real server, the official openai client, loopback OpenMeter stand-ins.

Globally as the seed writes it (``success_callback: ["openmeter"]`` with ``OPENMETER_*`` in the
environment) and per team through ``POST /team/{id}/callback``. Events are compared with the spans
the ``file`` destination wrote for the same calls, after the gateway stopped (stopping flushes
delivery, so a stray or duplicate event would be there by then).
"""

from __future__ import annotations

import itertools
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openai
import pytest

from app.api.admin import MASK
from app.config.settings import ConfigError, parse_config
from app.server.factory import check_destinations
from contracts import semconv as sc
from tests.support.gateway import running_gateway
from tests.support.openmeter import ACCEPTED, OpenMeterSink
from tests.support.sinks import Received, Reply
from tests.support.spanlog import read_spans
from tests.support.teams import (
    MODEL,
    SALT_KEY,
    admin_client,
    chat,
    database,
    error_of,
    gateway_settings,
    openai_client,
)

EMBEDDING_MODEL = "text-embedding-3-small"


def models() -> list[dict[str, Any]]:
    return [{"model_name": name, "litellm_params": {"model": f"mock/{name}"}} for name in (MODEL, EMBEDDING_MODEL)]


def global_env(sink: OpenMeterSink, **extra: str) -> dict[str, str]:
    return {"OPENMETER_API_KEY": sink.api_key, "OPENMETER_API_ENDPOINT": sink.url, **extra}


def expected_event(span: dict[str, Any], subject: str, event_type: str = "spangate_tokens") -> dict[str, Any]:
    """The event a file-destination span must have produced: its id, its model and its usage."""
    attrs = span["attributes"]
    prompt, completion = attrs[sc.USAGE_INPUT_TOKENS], attrs.get(sc.USAGE_OUTPUT_TOKENS, 0)
    data = {"model": attrs[sc.REQUEST_MODEL], "prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}
    if sc.USAGE_COST in attrs:
        data["cost"] = attrs[sc.USAGE_COST]
    return {"specversion": "1.0", "id": span["span_id"], "source": "spangate", "type": event_type,
            "subject": subject, "time": span["end_time_unix_nano"] // 1000, "data": data}


def time_in_microseconds(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its RFC 3339 time as Unix microseconds, to compare with the span's end."""
    assert event["time"].endswith("Z"), event
    when = datetime.fromisoformat(event["time"].replace("Z", "+00:00")) - datetime(1970, 1, 1, tzinfo=UTC)
    return {**event, "time": when // timedelta(microseconds=1)}


def test_seed_config_bills_each_successful_call_once_and_failed_calls_never(tmp_path: Path) -> None:
    both = ["openmeter", "file"]
    config = {"model_list": models(), "litellm_settings": {"success_callback": both, "failure_callback": both}}
    with OpenMeterSink() as meter:
        with running_gateway(config, data_dir=tmp_path, env=global_env(meter)) as gw, \
                openai_client(gw.base_url, "sk-anything") as client:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], user="cust-1")
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "no user here"}])
            stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "stream"}],
                                                    stream=True, user="cust-2")
            assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            client.embeddings.create(model=EMBEDDING_MODEL, input=["one", "two"], user="cust-1")
            with pytest.raises(openai.APIStatusError):
                client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
            span_log = gw.span_log_path
        spans = read_spans(span_log)
    meter.assert_wire_format()
    ok = [s for s in spans if s["status"]["code"] != "ERROR"]
    assert len(ok) == 4 and len(spans) == 5, [s["name"] for s in spans]
    subjects = [s["attributes"].get(sc.END_USER, "anonymous") for s in ok]
    assert sorted(map(time_in_microseconds, meter.events()), key=lambda e: e["id"]) == sorted(
        (expected_event(s, subject) for s, subject in zip(ok, subjects, strict=True)), key=lambda e: e["id"])
    embedding = next(e for e in meter.events() if e["data"]["model"] == EMBEDDING_MODEL)
    assert embedding["data"]["completion_tokens"] == 0 and embedding["data"]["prompt_tokens"] > 0


def test_event_type_is_configurable_and_a_missing_or_bad_var_stops_start_up(tmp_path: Path) -> None:
    raw = {"model_list": models(), "litellm_settings": {"success_callback": ["openmeter"]}}
    env = {"OPENMETER_API_KEY": "om_k", "OPENMETER_EVENT_TYPE": "litellm_tokens"}
    check_destinations(parse_config(raw, environ=env, base_dir=tmp_path), env)  # defaults to openmeter.cloud
    for bad_env, named in (({}, "openmeter_api_key"),
                           ({**env, "OPENMETER_API_ENDPOINT": "openmeter.cloud"}, "openmeter_api_endpoint"),
                           ({**env, "OPENMETER_EVENT_TYPE": "two words"}, "openmeter_event_type")):
        with pytest.raises(ConfigError) as info:
            check_destinations(parse_config(raw, environ=bad_env, base_dir=tmp_path), bad_env)
        assert str(info.value).startswith("litellm_settings.success_callback: openmeter: ")
        assert named in str(info.value)
    typed = {"OPENMETER_EVENT_TYPE": "litellm_tokens"}
    with (OpenMeterSink() as meter, running_gateway(raw, data_dir=tmp_path, env=global_env(meter, **typed)) as gw,
          openai_client(gw.base_url, "sk-anything") as client):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        meter.wait_for(lambda events: len(events) == 1)
    assert [e["type"] for e in meter.events()] == ["litellm_tokens"]


def team_callback(sink: OpenMeterSink, **extra: str) -> dict[str, Any]:
    return {"callback_name": "openmeter", "callback_type": "success",
            "callback_vars": {"openmeter_api_key": sink.api_key, "openmeter_api_endpoint": sink.url, **extra}}


def test_per_team_openmeter_through_the_admin_api(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every record, whatever level earlier tests left
    with database("sqlite", tmp_path) as db, OpenMeterSink() as team_meter, OpenMeterSink() as operator:
        config = {**gateway_settings(db, success_callback=["openmeter", "file"]), "model_list": models()}
        env = {**global_env(operator), "SPANGATE_SALT_KEY": SALT_KEY}
        with running_gateway(config, data_dir=tmp_path, env=env) as gw, admin_client(gw.base_url) as admin:
            own, other = (admin.post("/team/new", json={}).json()["team_id"] for _ in range(2))
            posted = admin.post(f"/team/{own}/callback", json=team_callback(team_meter, openmeter_event_type="t1"))
            assert posted.status_code == 200, posted.text
            shown = admin.get(f"/team/{own}/callback").json()["data"]
            assert shown["success_callbacks"] == ["openmeter"]
            assert shown["callback_vars"] == {"openmeter_api_key": MASK, "openmeter_api_endpoint": team_meter.url,
                                              "openmeter_event_type": "t1"}
            tested = admin.post(f"/team/{own}/callback/test").json()
            assert [r["status"] for r in tested["results"]] == ["success"], tested
            keys = {t: admin.post("/key/generate", json={"team_id": t}).json()["key"] for t in (own, other)}
            assert chat(gw.base_url, keys[own]).status_code == 200
            with openai_client(gw.base_url, keys[other]) as client:
                client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], user="u-9")
            team_meter.wait_for(lambda events: len(events) == 2)
            operator.wait_for(lambda events: len(events) == 1)
            for response in (posted, admin.get(f"/team/{own}/callback")):
                assert team_meter.api_key not in response.text
        dump = db.raw_dump()
    team_meter.assert_wire_format()
    operator.assert_wire_format()
    assert [(e["type"], e["subject"]) for e in team_meter.events()] == [("spangate_callback_test", own), ("t1", own)]
    assert [(e["type"], e["subject"]) for e in operator.events()] == [("spangate_tokens", "u-9")]
    assert team_meter.url in dump, "the dump must see the callback row, or the next check proves nothing"
    assert team_meter.api_key not in dump and team_meter.api_key.encode() not in db.raw_bytes()
    # Litestar no longer installs its own root handler, so pytest's caplog sees every record the gateway
    # logged; a sentinel of our own shows it does, or the next check would prove nothing.
    logging.getLogger("spangate").warning("openmeter-e2e-sentinel")
    out, err = capfd.readouterr()
    assert "openmeter-e2e-sentinel" in caplog.text, "no log lines captured: the next check would prove nothing"
    assert team_meter.api_key not in out + err + caplog.text


def test_config_form_default_team_settings(tmp_path: Path) -> None:
    """The seed's ``default_team_settings`` entry with ``os.environ/`` values, as for Langfuse."""
    with database("sqlite", tmp_path) as db, OpenMeterSink() as team_meter:
        entry = {"team_id": "billing-team", "success_callback": ["openmeter"],
                 "openmeter_api_key": "os.environ/TEAM_OPENMETER_KEY", "openmeter_api_endpoint": team_meter.url}
        config = {**gateway_settings(db, default_team_settings=[entry]), "model_list": models()}
        env = {"TEAM_OPENMETER_KEY": team_meter.api_key, "SPANGATE_SALT_KEY": SALT_KEY}
        with running_gateway(config, data_dir=tmp_path, env=env) as gw, admin_client(gw.base_url) as admin:
            key = admin.post("/key/generate", json={"team_id": "billing-team"}).json()["key"]
            assert chat(gw.base_url, key).status_code == 200
            team_meter.wait_for(lambda events: len(events) == 1)
    team_meter.assert_wire_format()
    assert [(e["type"], e["subject"]) for e in team_meter.events()] == [("spangate_tokens", "billing-team")]


@pytest.mark.parametrize(("callback_vars", "param", "named"), [
    ({"openmeter_api_endpoint": "http://127.0.0.1:9"}, "callback_vars", "openmeter_api_key"),
    ({"openmeter_api_key": "om_k", "openmeter_subject": "team"}, "callback_vars", "openmeter_subject"),
    ({"openmeter_api_key": "om_k", "openmeter_api_endpoint": "ftp://x"}, "callback_vars", "openmeter_api_endpoint"),
    ({"openmeter_api_key": "om_k", "openmeter_api_endpoint": "http://169.254.169.254"},
     "callback_vars.openmeter_api_endpoint", "openmeter_api_endpoint"),
    ({"openmeter_api_key": MASK}, "callback_vars.openmeter_api_key", "openmeter_api_key"),
])
def test_bad_team_vars_are_a_400_naming_the_var(tmp_path: Path, callback_vars: dict[str, Any], param: str,
                                                 named: str) -> None:
    with database("sqlite", tmp_path) as db, \
            running_gateway(gateway_settings(db), data_dir=tmp_path, env={"SPANGATE_SALT_KEY": SALT_KEY}) as gw, \
            admin_client(gw.base_url) as admin:
        team_id = admin.post("/team/new", json={}).json()["team_id"]
        body = {"callback_name": "openmeter", "callback_vars": callback_vars}
        error = error_of(admin.post(f"/team/{team_id}/callback", json=body), 400)
        assert error["param"] == param and named in error["message"], error
        assert "om_k" not in error["message"]
        assert admin.get(f"/team/{team_id}/callback").json()["data"]["success_callbacks"] == []


class Flaky:
    """500, then 429 with Retry-After, then accepted: an OpenMeter outage the delivery layer rides out."""

    def __init__(self) -> None:
        self._answers = itertools.chain([Reply(status=500, body=b"down"),
                                         Reply(status=429, body=b"slow", headers={"Retry-After": "0"})],
                                        itertools.repeat(ACCEPTED))
        self._lock = threading.Lock()

    def __call__(self, _request: Received) -> Reply:
        with self._lock:
            return next(self._answers)


def test_openmeter_answering_500_and_429_breaks_no_request_and_no_other_destination(tmp_path: Path) -> None:
    calls = 4
    config = {"model_list": models(), "litellm_settings": {"success_callback": ["openmeter", "file"]}}
    with (OpenMeterSink(Flaky()) as meter, running_gateway(config, data_dir=tmp_path, env=global_env(meter)) as gw,
          openai_client(gw.base_url, "sk-anything") as client):
        for i in range(calls):
            reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"#{i}"}])
            assert reply.choices[0].message.content
        spans = gw.wait_for_spans(calls)
        meter.wait_for(lambda _events: len(meter.stored()) == calls)
    statuses = meter.statuses()
    assert statuses[:2] == [500, 429] and set(statuses[2:]) == {204}
    span_ids = sorted(s["span_id"] for s in spans)
    assert sorted(event_id for _source, event_id in meter.stored()) == span_ids
    resent = [e["id"] for e in meter.events()]
    assert len(resent) > calls and sorted(set(resent)) == span_ids  # retried with the same ids: deduped
