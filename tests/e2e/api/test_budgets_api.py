"""Budgets and rate limits through the real admin API (issue 24, part A), and the spend it shows.

Real gateway on loopback, real SQLite store; spend rows are written with the store's own
``record_spend`` through a second connection to the same file, as the limiter's ledger will write them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.calls.limits import usd_to_nanos
from app.store import SpendRow, Store
from app.teams.secrets import hash_key
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.teams import Database, admin_client, database, error_of, gateway_settings, ok, poll

LIMITS = {"max_budget": 2.5, "soft_budget": 1.0, "budget_duration": "30d", "tpm_limit": 1000, "rpm_limit": 10,
          "max_parallel_requests": 2}
SHOWN = (*LIMITS, "budget_reset_at", "spend")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with database(request.param, tmp_path_factory.mktemp("budgets-store")) as store:
        yield store


@pytest.fixture(scope="module")
def gw(db: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with running_gateway(gateway_settings(db), env=db.env, data_dir=tmp_path_factory.mktemp("budgets-gw")) as running:
        yield running


@pytest.fixture
def admin(gw: RunningGateway) -> Iterator[httpx.Client]:
    with admin_client(gw.base_url) as client:
        yield client


def record(db: Database, rows: Sequence[SpendRow]) -> int:
    async def write() -> int:
        store = await Store.open(db.url, schema=db.schema)
        try:
            return await store.record_spend(rows)
        finally:
            await store.close()
    return asyncio.run(write())


def row(usd: float, *, token_hash: str | None = None, team_id: str | None = None, key_period: int = 0,
        team_period: int = 0, start: datetime | None = None, user_id: str | None = None) -> SpendRow:
    begun = start or datetime.now(UTC)
    return SpendRow(request_id=f"chatcmpl-{uuid.uuid4().hex}", token_hash=token_hash, team_id=team_id,
                    user_id=user_id, model="gpt-4", call_type="acompletion", status="success", prompt_tokens=7,
                    completion_tokens=5, total_tokens=12, spend_nanos=usd_to_nanos(usd), start_time=begun,
                    end_time=begun + timedelta(milliseconds=250), key_period=key_period, team_period=team_period)


def period_start(shown: dict[str, Any], days: int = 30) -> int:
    """The current period's start as the store counts it: budget_reset_at less the duration."""
    return int((datetime.fromisoformat(shown["budget_reset_at"]) - timedelta(days=days)).timestamp())


def limits_of(shown: dict[str, Any]) -> dict[str, Any]:
    return {name: shown[name] for name in LIMITS}


# --- the fields -------------------------------------------------------------------------------------


def test_a_keys_limits_are_taken_and_shown_everywhere_a_key_is(admin: httpx.Client) -> None:
    before = datetime.now(UTC)
    made = ok(admin.post("/key/generate", json={"key_alias": "capped", **LIMITS}))
    assert limits_of(made) == LIMITS and made["spend"] == 0.0
    reset = datetime.fromisoformat(made["budget_reset_at"])
    assert before + timedelta(days=30) <= reset <= datetime.now(UTC) + timedelta(days=30)
    info = ok(admin.post("/key/info", json={"key": made["key"]}))["info"]
    listed = [k for k in ok(admin.get("/key/list", params={"size": 100}))["keys"] if k["token"] == made["token"]]
    assert {n: info[n] for n in SHOWN} == {n: listed[0][n] for n in SHOWN} == {n: made[n] for n in SHOWN}


def test_a_key_without_limits_shows_nulls_and_its_all_time_spend(admin: httpx.Client) -> None:
    made = ok(admin.post("/key/generate", json={"max_budget": None}))  # LiteLLM's SDK sends nulls
    assert {n: made[n] for n in SHOWN} == {**dict.fromkeys(LIMITS), "budget_reset_at": None, "spend": 0.0}


def test_update_clears_a_limit_sent_as_null_and_keeps_those_left_out(admin: httpx.Client) -> None:
    made = ok(admin.post("/key/generate", json=LIMITS))
    updated = ok(admin.post("/key/update", json={"key": made["token"], "rpm_limit": None, "tpm_limit": 50}))
    assert limits_of(updated) == {**LIMITS, "rpm_limit": None, "tpm_limit": 50}
    cleared = ok(admin.post("/key/update", json={"key": made["key"], "budget_duration": None}))
    assert (cleared["budget_duration"], cleared["budget_reset_at"], cleared["max_budget"]) == (None, None, 2.5)


def test_setting_a_duration_starts_the_periods_from_now(admin: httpx.Client) -> None:
    made = ok(admin.post("/key/generate", json={"max_budget": 1, "budget_duration": "30d"}))
    changed = ok(admin.post("/key/update", json={"key": made["key"], "budget_duration": "1h"}))
    reset = datetime.fromisoformat(changed["budget_reset_at"])
    assert timedelta(minutes=59) < reset - datetime.now(UTC) <= timedelta(hours=1)
    assert changed["budget_duration"] == "1h"
    again = ok(admin.post("/key/update", json={"key": made["key"], "budget_duration": " 1h "}))
    assert again["budget_reset_at"] >= changed["budget_reset_at"] and again["budget_duration"] == "1h"


def test_a_teams_limits_are_taken_and_shown_by_new_update_info_and_list(admin: httpx.Client) -> None:
    made = ok(admin.post("/team/new", json={"team_alias": "capped", **LIMITS}))
    assert limits_of(made) == LIMITS and made["spend"] == 0.0
    updated = ok(admin.post("/team/update", json={"team_id": made["team_id"], "max_budget": None, "rpm_limit": 0}))
    assert limits_of(updated) == {**LIMITS, "max_budget": None, "rpm_limit": 0}
    info = ok(admin.get("/team/info", params={"team_id": made["team_id"]}))["team_info"]
    listed = [t for t in ok(admin.get("/team/list")) if t["team_id"] == made["team_id"]]
    assert {n: info[n] for n in SHOWN} == {n: listed[0][n] for n in SHOWN} == {n: updated[n] for n in SHOWN}


@pytest.mark.parametrize(("field", "value", "says"), [
    ("max_budget", -0.01, "from 0"), ("max_budget", "10", "number of US dollars"), ("soft_budget", True, "number"),
    ("max_budget", 1e10, "from 0"), ("budget_duration", "30w", "is not a duration"),
    ("budget_duration", "0d", "longer than 0"), ("budget_duration", 30, "is not a duration"),
    ("tpm_limit", -1, "from 0"), ("rpm_limit", 1.5, "whole number"), ("max_parallel_requests", "2", "whole number"),
    ("max_parallel_requests", 10**7, "from 0"),
])
def test_a_bad_value_is_a_400_naming_its_field_and_saves_nothing(admin: httpx.Client, field: str, value: object,
                                                                 says: str) -> None:
    keys_before = ok(admin.get("/key/list"))["total_count"]
    for path, body in (("/key/generate", {}), ("/team/new", {})):
        error = error_of(admin.post(path, json={**body, field: value}), 400)
        assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", field, "invalid_value")
        assert says in error["message"]
    assert ok(admin.get("/key/list"))["total_count"] == keys_before


def test_zero_is_a_limit_and_whole_floats_are_taken(admin: httpx.Client) -> None:
    made = ok(admin.post("/key/generate", json={"max_budget": 0, "rpm_limit": 10.0, "max_parallel_requests": 0}))
    assert (made["max_budget"], made["rpm_limit"], made["max_parallel_requests"]) == (0.0, 10, 0)


# --- spend ------------------------------------------------------------------------------------------


def test_spend_is_the_current_periods_counter_of_the_key_and_of_the_team(admin: httpx.Client, db: Database) -> None:
    team = ok(admin.post("/team/new", json={"max_budget": 100, "budget_duration": "30d"}))
    key = ok(admin.post("/key/generate", json={"team_id": team["team_id"], "max_budget": 5}))
    digest, key_period, team_period = key["token"], 0, period_start(team)
    assert record(db, [row(0.25, token_hash=digest, team_id=team["team_id"], team_period=team_period),
                       row(0.125, token_hash=digest, team_id=team["team_id"], team_period=team_period),
                       row(9.0, team_id=team["team_id"], team_period=team_period - 30 * 86400)]) == 3
    info = ok(admin.post("/key/info", json={"key": key["key"]}))["info"]
    assert (info["spend"], key_period) == (0.375, 0)
    team_info = ok(admin.get("/team/info", params={"team_id": team["team_id"]}))
    assert team_info["team_info"]["spend"] == 0.375  # last period's 9.0 is not this period's
    assert [k["spend"] for k in team_info["keys"]] == [0.375]
    listed = [k for k in ok(admin.get("/key/list", params={"team_id": team["team_id"]}))["keys"]]
    assert [k["spend"] for k in listed] == [0.375]
    assert [t["spend"] for t in ok(admin.get("/team/list")) if t["team_id"] == team["team_id"]] == [0.375]


def test_a_team_admin_sets_its_own_keys_limits_but_not_the_teams_nor_moves_a_key(admin: httpx.Client,
                                                                                gw: RunningGateway) -> None:
    team, other = ok(admin.post("/team/new", json={}))["team_id"], ok(admin.post("/team/new", json={}))["team_id"]
    boss = f"boss-{uuid.uuid4().hex[:8]}"
    ok(admin.post("/team/member_add", json={"team_id": team, "member": {"role": "admin", "user_id": boss}}))
    boss_key = ok(admin.post("/key/generate", json={"team_id": team, "user_id": boss}))["key"]
    poll(lambda: ok(admin.get("/team/info", params={"team_id": team}))["keys"] != [], timeout=5)
    with admin_client(gw.base_url, boss_key) as client:
        made = ok(client.post("/key/generate", json={"team_id": team, "max_budget": 1, "rpm_limit": 5}))
        assert (made["max_budget"], made["rpm_limit"]) == (1.0, 5)
        poll(lambda: client.post("/key/info", json={"key": made["key"]}).status_code == 200, timeout=5)
        assert ok(client.post("/key/update", json={"key": made["key"], "rpm_limit": None}))["rpm_limit"] is None
        moved = error_of(client.post("/key/update", json={"key": made["key"], "team_id": other}), 403)
        assert (moved["param"], moved["code"]) == ("team_id", "admin_only")
        assert error_of(client.post("/team/update", json={"team_id": team, "max_budget": 100}), 403)
    assert ok(admin.post("/key/info", json={"key": made["key"]}))["info"]["team_id"] == team


# --- /spend/logs -----------------------------------------------------------------------------------

DAY = datetime(2031, 5, 2, tzinfo=UTC)  # a day of its own, apart from the other tests' rows


def spend_world(admin: httpx.Client, db: Database) -> tuple[dict[str, Any], str, list[SpendRow]]:
    team = ok(admin.post("/team/new", json={}))["team_id"]
    user = f"u-{uuid.uuid4().hex[:8]}"
    key = ok(admin.post("/key/generate", json={"team_id": team, "user_id": user}))
    times = [DAY - timedelta(seconds=1), DAY, DAY + timedelta(hours=23, minutes=59, seconds=59),
             DAY + timedelta(days=1)]
    rows = [row(0.001 * (i + 1), token_hash=key["token"], team_id=team, user_id=user, start=t)
            for i, t in enumerate(times)]
    assert record(db, rows) == 4
    return key, team, rows


def ids(answer: httpx.Response) -> list[str]:
    return [r["request_id"] for r in ok(answer)]


def test_spend_log_rows_have_litellms_fields_and_sum_to_the_spend(admin: httpx.Client, db: Database) -> None:
    key, team, rows = spend_world(admin, db)
    shown = ok(admin.get("/spend/logs", params={"api_key": key["key"]}))
    assert shown[0] == {"request_id": rows[0].request_id, "call_type": "acompletion", "api_key": key["token"],
                        "spend": 0.001, "total_tokens": 12, "prompt_tokens": 7, "completion_tokens": 5,
                        "startTime": rows[0].start_time.isoformat(), "endTime": rows[0].end_time.isoformat(),
                        "model": "gpt-4", "user": rows[0].user_id, "team_id": team, "status": "success"}
    assert [r["request_id"] for r in shown] == [r.request_id for r in rows]  # oldest first
    spend = ok(admin.post("/key/info", json={"key": key["key"]}))["info"]["spend"]
    assert usd_to_nanos(spend) == sum(usd_to_nanos(r["spend"]) for r in shown) == sum(r.spend_nanos for r in rows)


def test_spend_logs_filter_as_litellm_names_them(admin: httpx.Client, db: Database) -> None:
    key, team, rows = spend_world(admin, db)
    every = [r.request_id for r in rows]
    assert ids(admin.get("/spend/logs", params={"api_key": key["token"]})) == every
    assert ids(admin.get("/spend/logs", params={"team_id": team})) == every
    assert ids(admin.get("/spend/logs", params={"user_id": rows[0].user_id})) == every
    assert ids(admin.get("/spend/logs", params={"request_id": every[2], "team_id": team})) == [every[2]]
    assert ids(admin.get("/spend/logs", params={"team_id": team, "page": 2, "page_size": 1})) == [every[1]]
    assert ids(admin.get("/spend/logs", params={"api_key": hash_key("sk-no-such-key")})) == []


def test_a_date_is_a_whole_utc_day_and_an_iso_time_an_instant(admin: httpx.Client, db: Database) -> None:
    _, team, rows = spend_world(admin, db)
    every = [r.request_id for r in rows]

    def between(**dates: str) -> list[str]:
        return ids(admin.get("/spend/logs", params={"team_id": team, **dates}))

    assert between(start_date="2031-05-02", end_date="2031-05-02") == every[1:3]  # LiteLLM's answer: []
    assert between(start_date="2031-05-02") == every[1:]
    assert between(end_date="2031-05-01") == every[:1]
    assert between(start_date="2031-05-02T00:00:00Z", end_date="2031-05-03T00:00:00+00:00") == every[1:]
    assert between(start_date="2031-05-02 02:00:00+02:00", end_date="2031-05-02T23:59:58") == every[1:2]
    assert between(end_date="9999-12-31") == every


@pytest.mark.parametrize(("params", "param"), [
    ({"start_date": "2031-5-2"}, "start_date"), ({"end_date": "yesterday"}, "end_date"),
    ({"start_date": "2031-05-02", "end_date": "2031-05-01"}, "end_date"),
    ({"end_date": "0001-01-01T00:00:00+05:00"}, "end_date"), ({"start_date": "2031-13-01"}, "start_date"),
    ({"page_size": 0}, "page_size"), ({"page_size": 1001}, "page_size"), ({"page": 0}, "page"),
])
def test_bad_spend_log_queries_are_400s_naming_the_param(admin: httpx.Client, params: dict[str, Any],
                                                        param: str) -> None:
    error = error_of(admin.get("/spend/logs", params=params), 400)
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_a_team_admin_reads_its_own_teams_spend_log_only(admin: httpx.Client, db: Database,
                                                         gw: RunningGateway) -> None:
    key, team, rows = spend_world(admin, db)
    other_key, other_team, _ = spend_world(admin, db)
    boss = f"boss-{uuid.uuid4().hex[:8]}"
    ok(admin.post("/team/member_add", json={"team_id": team, "member": {"role": "admin", "user_id": boss}}))
    boss_key = ok(admin.post("/key/generate", json={"team_id": team, "user_id": boss}))["key"]
    with admin_client(gw.base_url, boss_key) as client:
        poll(lambda: client.get("/spend/logs", params={"team_id": team}).status_code == 200, timeout=5)
        assert ids(client.get("/spend/logs", params={"team_id": team})) == [r.request_id for r in rows]
        # Another team's key under its own team_id finds nothing of the other team's
        assert ids(client.get("/spend/logs", params={"team_id": team, "api_key": other_key["key"]})) == []
        assert error_of(client.get("/spend/logs", params={"team_id": other_team}), 403)["code"] == "other_team"
        assert error_of(client.get("/spend/logs"), 403)["code"] == "other_team"
    with admin_client(gw.base_url, key["key"]) as plain:
        assert error_of(plain.get("/spend/logs", params={"team_id": team}), 403)["code"] == "admin_only"


# --- generated bad values ---------------------------------------------------------------------------

JSON_OTHER = st.one_of(st.booleans(), st.text(max_size=20), st.lists(st.integers(), max_size=2),
                       st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
BAD_MONEY = st.one_of(JSON_OTHER, st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False),
                      st.integers(max_value=-1),
                      st.floats(min_value=1.0000001e9, allow_infinity=False), st.integers(min_value=10**9 + 1))
BAD_COUNT = st.one_of(JSON_OTHER, st.integers(max_value=-1), st.integers(min_value=10**12 + 1),
                      st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()))
BAD_DURATION = st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                         st.text(max_size=12).filter(lambda t: not _is_duration(t)))
BAD_VALUES = {"max_budget": BAD_MONEY, "soft_budget": BAD_MONEY, "tpm_limit": BAD_COUNT, "rpm_limit": BAD_COUNT,
              "max_parallel_requests": st.one_of(BAD_COUNT, st.integers(min_value=10**6 + 1)),
              "budget_duration": BAD_DURATION}


def _is_duration(text: str) -> bool:
    from app.calls.limits import BudgetDuration
    try:
        BudgetDuration.parse(text)
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def targets(gw: RunningGateway) -> dict[str, dict[str, str]]:
    """The key and the team every generated update aims at (an example must not make its own)."""
    with admin_client(gw.base_url) as client:
        return {"/key/update": {"key": ok(client.post("/key/generate", json={}))["token"]},
                "/team/update": {"team_id": ok(client.post("/team/new", json={}))["team_id"]},
                "/key/generate": {}, "/team/new": {}}


@settings(max_examples=60, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), route=st.sampled_from(["/key/generate", "/key/update", "/team/new", "/team/update"]))
def test_generated_bad_values_are_400s_naming_the_field_never_500s(gw: RunningGateway, targets: dict[str, Any],
                                                                   data: st.DataObject, route: str) -> None:
    field = data.draw(st.sampled_from(sorted(BAD_VALUES)), label="field")
    value = data.draw(BAD_VALUES[field], label="value")
    with admin_client(gw.base_url) as client:
        error = error_of(client.post(route, json={**targets[route], field: value}), 400)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", field, "invalid_value")
    assert field in error["message"] and len(error["message"]) < 200


@pytest.mark.parametrize("literal", [b"1e400", b"-1e400"])
def test_a_number_too_large_for_a_float_is_a_400_too(admin: httpx.Client, literal: bytes) -> None:
    """JSON's decoder refuses it before any field is read, so this 400 names no field (msgspec's
    error does not say which); it is still a 400, never an infinite budget nor a 500."""
    for field in (b"max_budget", b"tpm_limit"):
        answer = admin.post("/key/generate", content=b'{"' + field + b'": ' + literal + b"}",
                            headers={"content-type": "application/json"})
        assert error_of(answer, 400)["message"].startswith("Number out of range")
