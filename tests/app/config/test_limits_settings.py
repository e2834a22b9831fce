"""Where budgets and rate limits are counted: Redis from LiteLLM's places in LiteLLM's order, the
backend choice, the failure mode, and no Redis password in any message."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.config.settings import ConfigError, parse_config

MODELS = {"model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m"}}]}


def limits(environ: dict[str, str] | None = None, **sections: Any) -> Any:
    return parse_config({**MODELS, **sections}, environ=environ or {}).limits


def test_defaults_count_in_process_on_sqlite_and_in_postgres_on_postgres() -> None:
    config = limits()
    assert (config.redis_url, config.fail_open, config.redis_key_prefix) == (None, True, "spangate:")
    assert config.backend_for(store_is_postgres=False) == "memory"
    assert config.backend_for(store_is_postgres=True) == "postgres"


@pytest.mark.parametrize(("sections", "environ", "url"), [
    ({"router_settings": {"redis_url": "redis://r:1/2"}}, {"REDIS_HOST": "env"}, "redis://r:1/2"),
    ({"router_settings": {"redis_host": "h", "redis_port": 7000, "redis_password": "p@ss/w"}}, {}, "redis://:p%40ss%2Fw@h:7000/0"),
    ({"router_settings": {"redis_host": "h", "redis_port": "7001"}}, {"REDIS_URL": "redis://other"}, "redis://h:7001/0"),
    ({}, {"REDIS_URL": "redis://u:pw@e:6/1", "REDIS_HOST": "h"}, "redis://u:pw@e:6/1"),
    ({}, {"REDIS_HOST": "h", "REDIS_PORT": "6390", "REDIS_PASSWORD": "x"}, "redis://:x@h:6390/0"),
])
def test_redis_is_found_where_litellm_looks_in_litellm_order(sections: dict[str, Any], environ: dict[str, str],
                                                             url: str) -> None:
    config = limits(environ, **sections)
    assert config.redis_url == url
    assert config.backend_for(store_is_postgres=True) == "redis"


def test_backend_and_failure_mode_are_chosen_in_spangate_settings() -> None:
    config = limits(spangate_settings={"limits_backend": "memory", "limits_on_backend_failure": "closed",
                                       "redis_key_prefix": "t1:"}, router_settings={"redis_host": "h"})
    assert (config.backend_for(True), config.fail_open, config.redis_key_prefix) == ("memory", False, "t1:")


@pytest.mark.parametrize(("sections", "named"), [
    ({"spangate_settings": {"limits_backend": "etcd"}}, "spangate_settings.limits_backend"),
    ({"spangate_settings": {"limits_on_backend_failure": "maybe"}}, "spangate_settings.limits_on_backend_failure"),
    ({"spangate_settings": {"limits_backend": "redis"}}, "spangate_settings.limits_backend"),
    ({"spangate_settings": {"redis_key_prefix": 3}}, "spangate_settings.redis_key_prefix"),
    ({"router_settings": {"redis_host": "h", "redis_port": 70000}}, "router_settings.redis_port"),
    ({"router_settings": {"redis_host": "redis://h"}}, "router_settings.redis_host"),
    ({"router_settings": {"redis_url": "http://h"}}, "router_settings.redis_url"),
    ({"router_settings": {"redis_url": "rediss://h"}}, "router_settings.redis_url"),
])
def test_a_bad_setting_stops_start_up_naming_it(sections: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        limits(**sections)


@given(st.binary(min_size=6, max_size=20).map(lambda raw: "pw-" + raw.hex()))
def test_a_redis_password_is_never_in_a_config_error(password: str) -> None:
    for sections in ({"router_settings": {"redis_url": f"http://:{password}@h"}},
                     {"router_settings": {"redis_host": "h", "redis_port": "bad", "redis_password": password}}):
        with pytest.raises(ConfigError) as error:
            limits(**sections)
        assert password not in str(error.value)
    assert password not in repr(limits(router_settings={"redis_host": "h", "redis_password": password}))
