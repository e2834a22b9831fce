"""``GET /health`` (LiteLLM's model check) and who may scrape ``/metrics``, on the real server."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from tests.support.gateway import running_gateway
from tests.support.teams import MASTER_KEY, admin_client, error_of, loopback_client, mock_models
from tests.support.upstream import closed_port

SCRAPE_TOKEN = "scrape-7c1e90d4b2a6f358"


def test_health_reports_each_deployment_by_a_connection_not_an_api_call(tmp_path: Path) -> None:
    with socket.socket() as listening:  # accepts connections, never answers: a paid API must not be called
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        port, dead = listening.getsockname()[1], closed_port()
        config = {"general_settings": {"master_key": MASTER_KEY}, "model_list": [
            *mock_models("mock-gpt"),
            {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "api_key": "sk-upstream-secret",
                                                        "api_base": f"http://127.0.0.1:{port}/v1"}},
            {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o",
                                                        "api_base": f"http://127.0.0.1:{dead}/v1"}}]}
        with running_gateway(config, data_dir=tmp_path) as gw, admin_client(gw.base_url) as admin, \
                loopback_client() as nobody:
            body = admin.get("/health").json()
            only_mock = admin.get("/health", params={"model": "mock-gpt"}).json()
            anonymous = nobody.get(f"{gw.base_url}/health")
    assert body == {
        "healthy_endpoints": [
            {"model": "mock-gpt", "deployment_id": "mock-gpt-0", "provider": "mock", "address": "mock"},
            {"model": "gpt-4o", "deployment_id": "gpt-4o-0", "provider": "openai", "address": f"127.0.0.1:{port}"}],
        "unhealthy_endpoints": [{"model": "gpt-4o", "deployment_id": "gpt-4o-1", "provider": "openai",
                                 "address": f"127.0.0.1:{dead}", "error": "connection refused"}],
        "healthy_count": 2, "unhealthy_count": 1}
    assert (only_mock["healthy_count"], only_mock["unhealthy_count"]) == (1, 0)
    assert error_of(anonymous, 401)["type"] == "authentication_error"


def test_behind_an_egress_proxy_health_checks_the_proxy_the_calls_go_through(tmp_path: Path) -> None:
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen(8)
        proxy_port, origin_port = proxy.getsockname()[1], closed_port()  # the origin is unreachable directly
        config = {"general_settings": {"master_key": MASTER_KEY}, "model_list": [
            {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o",
                                                        "api_base": f"http://127.0.0.1:{origin_port}/v1"}}],
            "spangate_settings": {"upstream_proxy": f"http://user:proxy-pw@127.0.0.1:{proxy_port}"}}
        with running_gateway(config, data_dir=tmp_path) as gw, admin_client(gw.base_url) as admin:
            response = admin.get("/health")
    assert response.json()["healthy_endpoints"] == [
        {"model": "gpt-4o", "deployment_id": "gpt-4o-0", "provider": "openai",
         "address": f"127.0.0.1:{origin_port} via proxy 127.0.0.1:{proxy_port}"}]
    assert "proxy-pw" not in response.text


def metrics_status(base_url: str, headers: dict[str, str]) -> int:
    with loopback_client(headers=headers) as client:
        return client.get(f"{base_url}/metrics").status_code


def test_metrics_scraping_follows_metrics_auth(tmp_path: Path) -> None:
    seen = {}
    for metrics_auth in (None, "master_key", "none", SCRAPE_TOKEN):
        settings: dict[str, Any] = {} if metrics_auth is None else {"metrics_auth": metrics_auth}
        config = {"model_list": mock_models(), "general_settings": {"master_key": MASTER_KEY},
                  "spangate_settings": settings}
        with running_gateway(config, data_dir=tmp_path / str(len(seen))) as gw:
            seen[metrics_auth] = (metrics_status(gw.base_url, {}),
                                  metrics_status(gw.base_url, {"Authorization": f"Bearer {SCRAPE_TOKEN}"}),
                                  metrics_status(gw.base_url, {"Authorization": f"Bearer {MASTER_KEY}"}))
    # (no key, scrape token, master key)
    assert seen == {None: (401, 401, 200), "master_key": (401, 401, 200), "none": (200, 200, 200),
                    SCRAPE_TOKEN: (401, 200, 200)}


def test_a_scrape_token_guards_metrics_even_without_a_master_key(tmp_path: Path) -> None:
    config = {"model_list": mock_models(), "spangate_settings": {"metrics_auth": SCRAPE_TOKEN}}
    with running_gateway(config, data_dir=tmp_path) as gw:
        without = metrics_status(gw.base_url, {})
        scraped = metrics_status(gw.base_url, {"x-litellm-api-key": SCRAPE_TOKEN})
    assert (without, scraped) == (401, 200)
