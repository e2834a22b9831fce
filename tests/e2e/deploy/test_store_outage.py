"""The store going away and coming back, on a PostgreSQL server the test owns (never the shared one).

While it is down: virtual keys already loaded keep working, the admin API answers 503 in OpenAI's
error JSON with Retry-After, readiness says not ready (503) and liveliness stays 200; the watcher
logs the outage once. When it is back: the admin API works again, readiness is 200, and the
recovery is logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import RunningGateway, running_gateway
from tests.support.postgres import TemporaryPostgres, own_postgres  # noqa: F401  (a fixture)
from tests.support.teams import Database, admin_client, error_of, gateway_settings, loopback_client, openai_client, poll

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ADMIN_CALLS = [("GET", "/team/list", None), ("GET", "/team/info?team_id=t", None),
               ("POST", "/team/new", {"team_alias": "during the outage"}), ("POST", "/key/generate", {}),
               ("POST", "/key/delete", {"keys": ["sk-whatever"]}), ("GET", "/team/t/callback", None)]


@pytest.fixture
def gw(own_postgres: TemporaryPostgres, tmp_path: Path) -> Iterator[RunningGateway]:  # noqa: F811
    with running_gateway(gateway_settings(Database("postgres", own_postgres.url)), data_dir=tmp_path) as gateway:
        yield gateway


def readiness(base_url: str) -> httpx.Response:
    with loopback_client() as client:
        return client.get(base_url + "/health/readiness")


def test_known_keys_keep_working_and_admin_says_503_until_the_store_is_back(
        gw: RunningGateway, own_postgres: TemporaryPostgres, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    caplog.set_level(logging.INFO, logger="app.store.watch")
    with admin_client(gw.base_url) as admin, ExitStack() as stack:
        assert admin.post("/team/new", json={"team_id": "t"}).status_code == 200
        key = admin.post("/key/generate", json={"team_id": "t"}).json()["key"]
        llm = stack.enter_context(openai_client(gw.base_url, key))
        assert readiness(gw.base_url).status_code == 200

        own_postgres.stop()
        for method, path, body in ADMIN_CALLS:
            response = admin.request(method, path, json=body)
            error = error_of(response, 503)
            assert error["code"] == "store_unavailable", (path, error)
            assert error["type"] == "service_unavailable_error"
            assert "store is unreachable" in error["message"]
            assert response.headers["retry-after"] == "5"
        answer = llm.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content

        poll(lambda: readiness(gw.base_url).status_code == 503, timeout=5)
        body = readiness(gw.base_url).json()
        assert (body["status"], body["db"]) == ("unhealthy", "unreachable")
        with loopback_client() as client:
            assert client.get(gw.base_url + "/health/liveliness").status_code == 200
        watcher = gw.gateway.store_link.watcher
        poll(lambda: watcher.consecutive_failures >= 5, timeout=5)  # it keeps retrying

        own_postgres.start()
        poll(lambda: readiness(gw.base_url).status_code == 200, timeout=10)
        assert readiness(gw.base_url).json()["db"] == "connected"
        assert admin.get("/team/list").status_code == 200
        second = admin.post("/key/generate", json={"team_id": "t"})
        assert second.status_code == 200
        assert stack.enter_context(openai_client(gw.base_url, second.json()["key"])).models.list().data

    watch_lines = [r.getMessage() for r in caplog.records if r.name == "app.store.watch"]
    assert len(watch_lines) == 2, watch_lines
    assert "store unreachable" in watch_lines[0] and "reachable again" in watch_lines[1]
