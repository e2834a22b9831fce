"""Budgets, rate limits and spend, exact across two real gateway processes on one PostgreSQL.

Each test gets a fresh database and runs twice: with the counters in Redis (a redis-server of the
test's own, so it can be killed and restarted; the machine's Redis is used where nothing is killed,
under a per-test key prefix) and with PostgreSQL alone. The gateways are ``python -m app.cli``
processes with their own data directories; calls alternate between them or are spread over both.
"""

from __future__ import annotations

import concurrent.futures
import json
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.gateway import free_socket
from tests.support.postgres import fresh_database
from tests.support.process import gateway_process
from tests.support.redis_server import TemporaryRedis, temporary_redis
from tests.support.teams import MASTER_KEY, admin_client, error_of, loopback_client, ok, poll

pytestmark = pytest.mark.postgres
MODEL, SLOW = "budget-gpt", "slow-gpt"
PROMPT = [{"role": "user", "content": "count me"}]


def free_port() -> int:
    with free_socket() as sock:
        return sock.getsockname()[1]


@dataclass
class Pair:
    urls: list[str]
    procs: list[subprocess.Popen[bytes]]
    configs: list[Path]
    ports: list[int]
    redis: TemporaryRedis | None
    stack: ExitStack

    def restart(self, index: int) -> None:
        """Start instance ``index`` again (after a kill) on its port, config and data directory."""
        self.procs[index] = self.stack.enter_context(gateway_process(self.configs[index], self.ports[index],
                                                                     debug=False))


def config_for(db_url: str, data_dir: Path, backend: str, redis_url: str | None, prefix: str) -> dict[str, Any]:
    prices = {"input_cost_per_token": 0.0000013, "output_cost_per_token": 0.0000029}
    spangate = {"team_poll_seconds": 0.2, "data_dir": str(data_dir), "redis_key_prefix": prefix,
                "limits_backend": backend}
    config: dict[str, Any] = {
        "model_list": [
            {"model_name": MODEL, "litellm_params": {"model": f"mock/{MODEL}"}, "model_info": prices},
            {"model_name": SLOW, "litellm_params": {"model": f"mock/{SLOW}"},
             "model_info": {**prices, "mock_chunk_delay": 0.15}}],
        "general_settings": {"master_key": MASTER_KEY, "database_url": db_url},
        "litellm_settings": {"callbacks": ["file"]},
        "spangate_settings": spangate,
    }
    if redis_url is not None:
        config["router_settings"] = {"redis_url": redis_url}
    return config


@pytest.fixture(params=["redis", "postgres"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    with two_instances(request.param, tmp_path) as instances:
        yield instances


@pytest.fixture
def redis_pair(tmp_path: Path) -> Iterator[Pair]:
    with two_instances("redis", tmp_path) as instances:
        yield instances


@contextmanager
def two_instances(backend: str, tmp_path: Path) -> Iterator[Pair]:
    with ExitStack() as stack:
        db_url = stack.enter_context(fresh_database())
        redis = stack.enter_context(temporary_redis()) if backend == "redis" else None
        redis_url = redis.url if redis else None
        prefix = f"t{secrets.token_hex(4)}:"
        ports, configs, procs = [], [], []
        for name in ("one", "two"):
            path = tmp_path / f"{name}.yaml"
            path.write_text(yaml.safe_dump(config_for(db_url, tmp_path / name, backend, redis_url, prefix)))
            port = free_port()
            procs.append(stack.enter_context(gateway_process(path, port, debug=False)))
            ports.append(port)
            configs.append(path)
        yield Pair([f"http://127.0.0.1:{p}" for p in ports], procs, configs, ports, redis, stack)


def call(url: str, key: str, model: str = MODEL, *, stream: bool = False) -> httpx.Response:
    with httpx.Client(timeout=30, trust_env=False) as client:
        body: dict[str, Any] = {"model": model, "messages": PROMPT}
        if stream:
            body["stream"] = True
            with client.stream("POST", f"{url}/v1/chat/completions", json=body,
                               headers={"Authorization": f"Bearer {key}"}) as response:
                response.read()
                return response
        return client.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})


def spread(pair: Pair, key: str, count: int, **kwargs: Any) -> list[httpx.Response]:
    """``count`` calls at once, alternating between the two instances."""
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(call, pair.urls[i % 2], key, **kwargs) for i in range(count)]
        return [f.result() for f in futures]


def key_info(url: str, key: str) -> dict[str, Any]:
    with admin_client(url) as admin:
        return ok(admin.post("/key/info", json={"key": key}))["info"]


def spend_logs(url: str, key: str) -> list[dict[str, Any]]:
    with admin_client(url) as admin:
        return ok(admin.get("/spend/logs", params={"api_key": key}))


def one_call_cost(pair: Pair) -> float:
    """The price of one call to MODEL (a mock: the same prompt always costs the same)."""
    with admin_client(pair.urls[0]) as admin:
        probe = ok(admin.post("/key/generate", json={}))["key"]
    assert call(pair.urls[0], probe).status_code == 200
    poll(lambda: len(spend_logs(pair.urls[1], probe)) == 1, timeout=10)
    cost = spend_logs(pair.urls[1], probe)[0]["spend"]
    assert cost > 0
    return cost


def limited_key(pair: Pair, **limits: Any) -> str:
    with admin_client(pair.urls[0]) as admin:
        key = ok(admin.post("/key/generate", json=limits))["key"]
    # Instance two learns the key from its store watcher.
    poll(lambda: call_status_is_not_401(pair.urls[1], key), timeout=10)
    return key


def call_status_is_not_401(url: str, key: str) -> bool:
    with loopback_client() as client:
        return client.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_sequential_calls_alternating_admit_exactly_floor_budget_over_cost(pair: Pair) -> None:
    cost = one_call_cost(pair)
    key = limited_key(pair, max_budget=cost * 5)
    statuses = [call(pair.urls[i % 2], key).status_code for i in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    refused = call(pair.urls[1], key)
    error = error_of(refused, 429)
    assert error["type"] == "budget_exceeded"
    assert "Budget has been exceeded" in error["message"] and key not in error["message"]
    poll(lambda: len(spend_logs(pair.urls[0], key)) == 5, timeout=10)
    info = key_info(pair.urls[1], key)
    assert info["spend"] == pytest.approx(cost * 5, abs=1e-12)


def test_rpm_limit_admits_exactly_n_of_thirty_concurrent_calls_over_two_instances(pair: Pair) -> None:
    key = limited_key(pair, rpm_limit=7)
    responses = spread(pair, key, 30)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 7 + [429] * 23
    refused = next(r for r in responses if r.status_code == 429)
    assert error_of(refused, 429)["type"] == "throttling_error"
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_tpm_limit_admits_while_the_window_is_below_it(pair: Pair) -> None:
    first = limited_key(pair)
    assert call(pair.urls[0], first).status_code == 200
    poll(lambda: len(spend_logs(pair.urls[0], first)) == 1, timeout=10)
    tokens = spend_logs(pair.urls[0], first)[0]["total_tokens"]
    key = limited_key(pair, tpm_limit=int(tokens * 2.5))
    statuses = [call(pair.urls[i % 2], key).status_code for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


def test_max_parallel_requests_admits_exactly_two_of_six_slow_calls(pair: Pair) -> None:
    key = limited_key(pair, max_parallel_requests=2)
    responses = spread(pair, key, 6, model=SLOW, stream=True)
    assert sorted(r.status_code for r in responses) == [200, 200, 429, 429, 429, 429]
    # The slots are free again once the streams ended.
    assert [call(pair.urls[i], key).status_code for i in (0, 1)] == [200, 200]


def test_concurrent_calls_crossing_a_budget_overshoot_only_by_calls_in_flight_and_spend_is_exact(
        pair: Pair) -> None:
    cost = one_call_cost(pair)
    key = limited_key(pair, max_budget=cost * 10)
    responses = spread(pair, key, 24)
    admitted = sum(r.status_code == 200 for r in responses)
    assert 10 <= admitted <= 24 and all(r.status_code in (200, 429) for r in responses)
    poll(lambda: len(spend_logs(pair.urls[0], key)) == admitted, timeout=10)
    rows = spend_logs(pair.urls[0], key)
    assert sum(row["spend"] for row in rows) == pytest.approx(admitted * cost, abs=1e-12)
    assert key_info(pair.urls[1], key)["spend"] == pytest.approx(admitted * cost, abs=1e-12)
    assert call(pair.urls[0], key).status_code == 429


def test_spend_is_exact_across_a_kill_of_one_instance(pair: Pair) -> None:
    cost = one_call_cost(pair)
    key = limited_key(pair, max_budget=cost * 1000)
    done = [call(pair.urls[i % 2], key).status_code for i in range(12)]
    assert done == [200] * 12
    pair.procs[1].send_signal(signal.SIGKILL)
    pair.procs[1].wait(10)
    pair.restart(1)  # its journal is replayed into the store: nothing it answered is lost
    more = [call(pair.urls[i % 2], key).status_code for i in range(6)]
    assert more == [200] * 6
    poll(lambda: len(spend_logs(pair.urls[0], key)) == 18, timeout=15)
    assert key_info(pair.urls[1], key)["spend"] == pytest.approx(18 * cost, abs=1e-12)


def test_budget_duration_resets_spend_at_budget_reset_at(pair: Pair) -> None:
    cost = one_call_cost(pair)
    key = limited_key(pair, max_budget=cost * 2, budget_duration="5s")
    statuses = [call(pair.urls[i % 2], key).status_code for i in range(3)]
    assert statuses[:2] == [200, 200] and statuses[2] == 429
    reset_at = datetime.fromisoformat(key_info(pair.urls[0], key)["budget_reset_at"]).timestamp()
    poll(lambda: call(pair.urls[1], key).status_code == 200, timeout=12, interval=0.1)
    assert time.time() - reset_at < 1.5  # admitted again within a second of the reset (plus a poll step)


def test_a_refused_call_is_a_failure_span_for_the_team(pair: Pair, tmp_path: Path) -> None:
    with admin_client(pair.urls[0]) as admin:
        team = ok(admin.post("/team/new", json={"team_alias": "limited", "rpm_limit": 1}))["team_id"]
        key = ok(admin.post("/key/generate", json={"team_id": team}))["key"]
    poll(lambda: call_status_is_not_401(pair.urls[0], key), timeout=10)
    assert call(pair.urls[0], key).status_code == 200
    refused = call(pair.urls[0], key)
    assert refused.status_code == 429 and error_of(refused, 429)["type"] == "throttling_error"

    def refused_span() -> dict[str, Any] | None:
        path = tmp_path / "one" / "spans.jsonl"
        for line in path.read_text().splitlines() if path.exists() else ():
            span = json.loads(line)
            attrs = span.get("attributes", {})
            if attrs.get("spangate.team.id") == team and attrs.get("error.type") == "rate_limit_exceeded":
                return span
        return None

    poll(lambda: refused_span() is not None, timeout=10)


def test_redis_down_fails_open_with_a_readiness_report_and_counts_again_when_back(redis_pair: Pair) -> None:
    pair = redis_pair
    assert pair.redis is not None
    key = limited_key(pair, rpm_limit=3)
    assert [call(pair.urls[0], key).status_code for _ in range(4)] == [200, 200, 200, 429]
    pair.redis.kill()
    assert call(pair.urls[0], key).status_code == 200  # fail open: passes uncounted
    assert readiness(pair.urls[0])["limits"]["healthy"] is False
    pair.redis.start()  # empty: Redis keeps nothing
    poll(lambda: readiness(pair.urls[0])["limits"]["healthy"], timeout=10)
    assert [call(pair.urls[1], key).status_code for _ in range(4)] == [200, 200, 200, 429]
    # Spend went on through the outage: every call answered is in the store once (3 + 1 + 3).
    poll(lambda: len(spend_logs(pair.urls[0], key)) == 7, timeout=10)
    rows = spend_logs(pair.urls[1], key)
    assert key_info(pair.urls[1], key)["spend"] == pytest.approx(sum(row["spend"] for row in rows), abs=1e-12)


def readiness(url: str) -> dict[str, Any]:
    with loopback_client() as client:
        return client.get(f"{url}/health/readiness").json()
