"""Key lookups keep the key out of URLs: POST body or header; LiteLLM's ``?key=`` still answers, and no
access-log line shows it (the CLI with ``--debug``, one worker and several)."""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from app.api.admin import KEY_HEADER
from app.server.accesslog import redact_query
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.process import gateway_process
from tests.support.teams import MASTER_KEY, admin_client, database, error_of, gateway_settings
from tests.support.upstream import closed_port


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with database("sqlite", tmp_path_factory.mktemp("store")) as db, \
            running_gateway(gateway_settings(db), data_dir=tmp_path_factory.mktemp("gw")) as running:
        yield running


@pytest.fixture
def admin(gw: RunningGateway) -> Iterator[httpx.Client]:
    with admin_client(gw.base_url) as client:
        yield client


def test_a_key_is_looked_up_from_a_post_body_a_header_or_the_query(admin: httpx.Client) -> None:
    key = admin.post("/key/generate", json={"key_alias": "lookup"}).json()["key"]
    digest = hashlib.sha256(key.encode()).hexdigest()
    answers = [admin.post("/key/info", json={"key": key}), admin.get("/key/info", headers={KEY_HEADER: key}),
               admin.get("/key/info", params={"key": key})]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.json()["info"]["token"] == digest and answer.json()["info"]["key_alias"] == "lookup"
    error_of(admin.post("/key/info", json={"key": "sk-no-such-key-000000000"}), 404)
    error = error_of(admin.get("/key/info"), 400)
    assert error["param"] == "key" and KEY_HEADER in error["message"]


def test_redact_query_hides_key_values_and_key_shaped_values() -> None:
    assert redact_query("/key/info?key=sk-abc") == "/key/info?key=***"
    assert redact_query("/x?team_id=t1&api_key=abc&x=0f1e2d3c4b5a69788796a5b4c3d2e1f0") == \
        "/x?team_id=t1&api_key=***&x=***"
    assert redact_query("/team/info?team_id=platform-team") == "/team/info?team_id=platform-team"
    assert redact_query("/health") == "/health"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_access_log_never_shows_a_key_from_the_query(tmp_path: Path, workers: str) -> None:
    with database("sqlite", tmp_path) as db:
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({**gateway_settings(db), "litellm_settings": {"callbacks": ["file"]},
                                          "spangate_settings": {"data_dir": str(tmp_path / "data")}}))
        port = closed_port()
        with gateway_process(config, port, "--num_workers", workers) as proc:
            base = f"http://127.0.0.1:{port}"
            with admin_client(base) as admin:
                key = admin.post("/key/generate", json={}).json()["key"]
                assert admin.get("/key/info", params={"key": key}).status_code == 200
                assert admin.get("/team/info", params={"team_id": "visible-team-id"}).status_code == 404
            proc.send_signal(signal.SIGTERM)
            output = proc.communicate(timeout=30)[0].decode()
    assert 'GET /key/info?key=*** HTTP/1.1" 200' in output, output  # the line is there, without the key
    assert "GET /team/info?team_id=visible-team-id" in output  # other queries stay readable
    assert key not in output and key[3:15] not in output
    assert MASTER_KEY not in output
