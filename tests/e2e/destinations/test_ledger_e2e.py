"""A team sees and mends its own logging: the ledger, dead letters, replay, retention, content policy.

The real server with the durable spool, the official ``openai`` client, and a loopback Langfuse that
answers 401 to any credentials but its project's (as Langfuse does for a wrong secret key).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from processors.delivery import DeliveryConfig
from tests.support.gateway import running_gateway
from tests.support.otlp import decode_otlp_traces
from tests.support.sinks import HttpSink, Received, Reply
from tests.support.teams import (
    MODEL,
    LangfuseProject,
    admin_client,
    database,
    error_of,
    gateway_settings,
    langfuse_callback,
    langfuse_projects,
    new_key,
    new_team,
    ok,
    openai_client,
    poll,
)

WRONG_SECRET = "sk-lf-wrong-3b7e0c19d4"
PROMPT = "ledger prompt 5e1f"


def durable_delivery(data_dir: Path, **overrides: Any) -> DeliveryConfig:
    """The spool, as in production (dead letters live there), with test-sized delays."""
    return DeliveryConfig(spool_dir=data_dir / "spool", durable=True, batch_delay=0.05, initial_backoff=0.05,
                          shutdown_flush_timeout=5.0, **overrides)


class CheckingCredentials:
    """The project's responder: 401 to foreign credentials (and to all while ``refusing`` is set, as
    for a project whose keys were rotated); what it accepted is kept."""

    def __init__(self, project: LangfuseProject) -> None:
        self.project, self.refusing = project, threading.Event()
        self.accepted: list[Received] = []
        self.lock = threading.Lock()
        project.sink.respond = self

    def __call__(self, req: Received) -> Reply:
        if self.refusing.is_set() or req.headers.get("authorization") != self.project.basic_auth:
            return Reply(401, body=b'{"message": "Invalid credentials. Confirm that you configured the right host."}')
        with self.lock:
            self.accepted.append(req)
        return Reply(200)

    def span_ids(self) -> Counter[str]:
        """Span ids the project accepted, each request in its own credentials."""
        with self.lock:
            accepted = list(self.accepted)
        assert all(r.headers["authorization"] == self.project.basic_auth for r in accepted)
        return Counter(span["span_id"] for req in accepted for span in decode_otlp_traces(req.body))


def send_chats(base_url: str, key: str, count: int) -> None:
    with openai_client(base_url, key) as client:
        for i in range(count):
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"{PROMPT} #{i}"}])


def row(admin: httpx.Client, team_id: str, name: str = "langfuse") -> dict[str, Any]:
    ledger = ok(admin.get(f"/team/{team_id}/deliveries"))
    assert ledger["team_id"] == team_id
    return next(d for d in ledger["destinations"] if d["callback_name"] == name)


def test_a_team_sees_its_refused_calls_fixes_the_secret_and_replays_each_once(tmp_path: Path) -> None:
    with (database("sqlite", tmp_path) as db, langfuse_projects("A") as projects,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env=db.env,
                          delivery_config=durable_delivery(tmp_path)) as gw,
          admin_client(gw.base_url) as admin):
        project = projects["A"]
        sink = CheckingCredentials(project)
        team_id = new_team(admin)
        key = new_key(admin, team_id=team_id)
        ok(admin.post(f"/team/{team_id}/callback",
                      json=langfuse_callback(project.public_key, WRONG_SECRET, project.host)))
        send_chats(gw.base_url, key, 5)
        poll(lambda: row(admin, team_id)["dead_lettered"] == 5, timeout=15)
        failing = row(admin, team_id)
        listed = admin.get(f"/team/{team_id}/callback/langfuse/dead_letters")
        letters = ok(listed)["dead_letters"]

        ok(admin.post(f"/team/{team_id}/callback", json=project.callback_body()))  # the right secret
        assert ok(admin.post(f"/team/{team_id}/callback/langfuse/replay")) == {"replayed": 5}
        poll(lambda: row(admin, team_id)["delivered"] == 5, timeout=15)
        mended = row(admin, team_id)
        ledger_text = admin.get(f"/team/{team_id}/deliveries").text
    assert failing["state"] == "failing" and failing["callback_type"] == "success"
    assert (failing["delivered"], failing["queued"], failing["retrying"]) == (0, 0, 0)
    assert failing["last_error"]["status"] == 401 and failing["last_error"]["reason"] == "HTTP 401"
    assert failing["last_failure_at"] is not None and failing["last_success_at"] is None
    assert len(letters) == 5 and {(d["reason"], d["status"], d["model"]) for d in letters} == {("HTTP 401", 401, MODEL)}
    assert all(len(d["span_id"]) == 16 and len(d["trace_id"]) == 32 and d["time"] for d in letters)
    for shown in (listed.text, ledger_text, json.dumps(failing)):  # no content, no secret, no answer body
        assert PROMPT not in shown and WRONG_SECRET not in shown and "Invalid credentials" not in shown
    # Each refused call arrived once, under the right credentials, and the ledger matches the sink.
    assert sink.span_ids() == Counter({d["span_id"]: 1 for d in letters})
    assert (mended["state"], mended["dead_lettered"], mended["delivered"], mended["queued"]) == ("ok", 0, 5, 0)
    assert mended["last_success_at"] > mended["last_failure_at"]
    assert 0 < mended["lag_p50_ms"] <= mended["lag_p99_ms"]


def test_replay_by_span_ids_and_the_operators_replay_of_a_gateway_wide_destination(tmp_path: Path) -> None:
    with (database("sqlite", tmp_path) as db, langfuse_projects("operator") as projects):
        project = projects["operator"]
        sink = CheckingCredentials(project)
        sink.refusing.set()  # the operator's project refuses its key, then the key is restored there
        env = {"LANGFUSE_PUBLIC_KEY": project.public_key, "LANGFUSE_SECRET_KEY": project.secret_key,
               "LANGFUSE_HOST": project.host, **db.env}
        with (running_gateway(gateway_settings(db, success_callback=["langfuse"]), data_dir=tmp_path, env=env,
                              delivery_config=durable_delivery(tmp_path)) as gw, admin_client(gw.base_url) as admin):
            send_chats(gw.base_url, new_key(admin), 3)
            delivery = gw.gateway.delivery
            poll(lambda: delivery.dead_letter_count("global/langfuse") == 3, timeout=15)
            [first, *_] = delivery.dead_letters("global/langfuse")
            sink.refusing.clear()
            chosen = admin.post("/health/destinations/langfuse/replay", json={"span_ids": [f"{first.span_id:016x}"]})
            poll(lambda: len(sink.span_ids()) == 1, timeout=15)
            everything = admin.post("/health/destinations/langfuse/replay", json={})
            poll(lambda: len(sink.span_ids()) == 3, timeout=15)
            with admin_client(gw.base_url, new_key(admin)) as caller:
                member = caller.post("/health/destinations/langfuse/replay")
            unknown = admin.post("/health/destinations/nowhere/replay")
            left = delivery.dead_letter_count("global/langfuse")
    assert ok(chosen) == {"replayed": 1} and ok(everything) == {"replayed": 2}
    assert set(sink.span_ids().values()) == {1} and f"{first.span_id:016x}" in sink.span_ids()
    assert left == 0
    assert error_of(member, 403)["code"] == "admin_only"
    assert error_of(unknown, 404)["param"] == "name"


@pytest.mark.parametrize(("policy", "expect"), [({"turn_off_message_logging": True}, "redacted"),
                                                ({"message_logging": "none"}, "absent")])
def test_the_same_call_reaches_two_destinations_with_and_without_its_prompt(tmp_path: Path, policy: dict[str, Any],
                                                                           expect: str) -> None:
    with (database("sqlite", tmp_path) as db, langfuse_projects("A") as projects, HttpSink() as archive,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env=db.env) as gw,
          admin_client(gw.base_url) as admin):
        team_id = new_team(admin)
        quiet = projects["A"].callback_body()
        quiet["callback_vars"].update(policy)
        ok(admin.post(f"/team/{team_id}/callback", json=quiet))
        ok(admin.post(f"/team/{team_id}/callback", json={
            "callback_name": "generic", "callback_type": "success",
            "callback_vars": {"generic_logger_endpoint": archive.url + "/archive"}}))
        send_chats(gw.base_url, new_key(admin, team_id=team_id), 1)
        projects["A"].wait_for(lambda s: len(s) == 1)
        archive.wait_for(lambda reqs: len(reqs) == 1)
    [span] = projects["A"].spans()
    [record] = [json.loads(r.body)["data"] for r in archive.requests]
    assert PROMPT in json.dumps(record["messages"])  # the archive keeps the prompt...
    assert record["span_id"] == span["span_id"]  # ...of the same call...
    assert PROMPT.encode() not in b"".join(r.body for r in projects["A"].sink.requests)  # ...Langfuse never sees it
    attrs = span["attributes"]
    if expect == "redacted":
        assert json.loads(attrs["gen_ai.input.messages"]) == [
            {"role": "user", "parts": [{"type": "text", "content": "redacted-by-spangate"}]}]
        assert json.loads(attrs["gen_ai.output.messages"])[0]["role"] == "assistant"
    else:
        assert "gen_ai.input.messages" not in attrs and "gen_ai.output.messages" not in attrs
    assert attrs["gen_ai.usage.input_tokens"] > 0  # the rest of the span is whole


def test_a_short_retention_drops_old_dead_letters_and_counts_them(tmp_path: Path) -> None:
    with (database("sqlite", tmp_path) as db, langfuse_projects("A") as projects,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env=db.env,
                          delivery_config=durable_delivery(tmp_path, dead_letter_retention=1.0)) as gw,
          admin_client(gw.base_url) as admin):
        project = projects["A"]
        CheckingCredentials(project)
        team_id = new_team(admin)
        ok(admin.post(f"/team/{team_id}/callback",
                      json=langfuse_callback(project.public_key, WRONG_SECRET, project.host)))
        send_chats(gw.base_url, new_key(admin, team_id=team_id), 4)
        delivery = gw.gateway.delivery
        poll(lambda: sum(h.dead_lettered for h in delivery.health() if h.team == team_id) == 4, timeout=15)
        poll(lambda: row(admin, team_id)["dead_lettered"] == 0, timeout=15)
        metrics = admin.get("/metrics").text
        replayed = ok(admin.post(f"/team/{team_id}/callback/langfuse/replay"))
    [line] = [m for m in metrics.splitlines()
              if m.startswith("spangate_delivery_dead_letters_dropped") and f"team/{team_id}/" in m]
    assert 'reason="expired"' in line and line.endswith(" 4")
    assert replayed == {"replayed": 0}


def test_ledger_and_replay_bad_input_and_unknown_names(tmp_path: Path) -> None:
    with (database("sqlite", tmp_path) as db, langfuse_projects("A") as projects,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env=db.env) as gw,
          admin_client(gw.base_url) as admin):
        team_id = new_team(admin)
        ok(admin.post(f"/team/{team_id}/callback", json=projects["A"].callback_body()))
        replay = f"/team/{team_id}/callback/langfuse/replay"
        answers = {
            "since": admin.post(replay, json={"since": "yesterday"}),
            "until": admin.post(replay, json={"since": 200, "until": 100}),
            "span_ids[0]": admin.post(replay, json={"span_ids": ["xyz"]}),
            "span_ids": admin.post(replay, json={"span_ids": []}),
            "everything": admin.post(replay, json={"everything": True}),
            "callback_name": admin.post(f"/team/{team_id}/callback/datadog/replay"),
            "team_id": admin.get("/team/no-such-team/deliveries"),
            "limit": admin.get(f"/team/{team_id}/callback/langfuse/dead_letters?limit=0"),
        }
        iso = admin.post(replay, json={"since": "2026-12-08T00:00:00Z", "until": 1_900_000_000})
        with admin_client(gw.base_url, new_key(admin, team_id=team_id)) as caller:
            member = caller.get(f"/team/{team_id}/deliveries")
        empty = ok(admin.get(f"/team/{team_id}/callback/langfuse/dead_letters"))
    for param, answer in answers.items():
        status = 404 if param in ("callback_name", "team_id") else 400
        assert error_of(answer, status)["param"] == param
    assert ok(iso) == {"replayed": 0}
    assert error_of(member, 403)["code"] == "admin_only"  # guarded as the other /team/{id}/callback routes
    assert empty["dead_letters"] == []


def test_replay_refuses_a_bound_that_is_not_a_finite_number(tmp_path: Path) -> None:
    """A 400-digit int overflowed float() (a 500); NaN compared false both ways and replayed everything."""
    with (database("sqlite", tmp_path) as db, langfuse_projects("A") as projects,
          running_gateway(gateway_settings(db), data_dir=tmp_path, env=db.env) as gw,
          admin_client(gw.base_url) as admin):
        team_id = new_team(admin)
        ok(admin.post(f"/team/{team_id}/callback", json=projects["A"].callback_body()))
        replay = f"/team/{team_id}/callback/langfuse/replay"
        for raw, param in ((b'{"since": 1' + b"0" * 400 + b"}", "since"), (b'{"until": NaN}', "until"),
                           (b'{"since": Infinity}', "since"), (b'{"until": -1e400}', "until")):
            answer = admin.post(replay, content=raw, headers={"content-type": "application/json"})
            assert error_of(answer, 400)["param"] == param, raw[:20]
        assert ok(admin.post(replay, json={"since": 0, "until": 1e12})) == {"replayed": 0}
