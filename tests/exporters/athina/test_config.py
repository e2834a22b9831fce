"""AthinaConfig.from_vars: the team and env forms, and what a bad var says."""

from __future__ import annotations

import pytest

from exporters.athina.config import ENV_VARS, SECRET_VARS, AthinaConfig

ALLOWED = "athina_api_key, athina_base_url"


def test_default_host_and_a_self_hosted_one():
    assert AthinaConfig.from_vars({"athina_api_key": "ak"}).inference_url == "https://log.athina.ai/api/v1/log/inference"
    config = AthinaConfig.from_vars({"athina_api_key": " ak ", "athina_base_url": "http://10.0.0.5:8080/athina/"})
    assert (config.api_key, config.inference_url) == ("ak", "http://10.0.0.5:8080/athina/api/v1/log/inference")


@pytest.mark.parametrize(("vars", "message"), [
    ({}, f"missing athina callback var 'athina_api_key'; allowed: {ALLOWED}"),
    ({"athina_api_key": "ak", "athina_env": "prod"}, f"unknown athina callback var 'athina_env'; allowed: {ALLOWED}"),
    ({"athina_api_key": ""}, "athina_api_key must not be empty"),
    ({"athina_api_key": 3}, "athina_api_key must be a string, not int"),
    ({"athina_api_key": "SECRET\nX: 1"}, "athina_api_key must not contain whitespace or control characters"),
    ({"athina_api_key": "ak", "athina_base_url": "https://log.athina.ai/?k=SECRET"},
     "athina_base_url is a base URL: it must not have a query or a fragment ('?' or '#')"),
])
def test_bad_vars_name_the_var(vars, message):
    with pytest.raises(ValueError) as info:
        AthinaConfig.from_vars(vars)
    assert str(info.value) == message
    assert "SECRET" not in str(info.value)


def test_repr_masks_the_key_and_tables():
    assert repr(AthinaConfig("ak-SECRET")) == "AthinaConfig(api_key='****', base_url='https://log.athina.ai')"
    assert {"athina_api_key"} == SECRET_VARS
    assert ENV_VARS == {"athina_api_key": "ATHINA_API_KEY", "athina_base_url": "ATHINA_BASE_URL"}
