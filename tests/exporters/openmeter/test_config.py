"""OpenMeterConfig.from_vars: what a team's callback_vars may hold, and what a bad one says."""

from __future__ import annotations

import pytest

from exporters.openmeter.config import ENV_VARS, SECRET_VARS, OpenMeterConfig

ALLOWED = "openmeter_api_key, openmeter_api_endpoint, openmeter_event_type"


def test_only_the_key_is_required_and_the_rest_defaults_as_documented():
    config = OpenMeterConfig.from_vars({"openmeter_api_key": "om_key"})
    assert config == OpenMeterConfig("om_key", "https://openmeter.cloud", "spangate_tokens")
    assert config.events_url == "https://openmeter.cloud/api/v1/events"


def test_self_hosted_endpoint_keeps_its_path_and_loses_the_trailing_slash():
    config = OpenMeterConfig.from_vars({"openmeter_api_key": " om_key ", "openmeter_event_type": "litellm_tokens",
                                        "openmeter_api_endpoint": " http://10.0.0.7:8888/meter/ "})
    assert (config.api_key, config.event_type) == ("om_key", "litellm_tokens")
    assert config.events_url == "http://10.0.0.7:8888/meter/api/v1/events"


@pytest.mark.parametrize(("vars", "message"), [
    ({}, f"missing openmeter callback var 'openmeter_api_key'; allowed: {ALLOWED}"),
    ({"openmeter_api_endpoint": "https://openmeter.cloud"},
     f"missing openmeter callback var 'openmeter_api_key'; allowed: {ALLOWED}"),
    ({"openmeter_api_key": "k", "openmeter_subject": "x"},
     f"unknown openmeter callback var 'openmeter_subject'; allowed: {ALLOWED}"),
    ({"openmeter_api_key": " "}, "openmeter_api_key must not be empty"),
    ({"openmeter_api_key": 7}, "openmeter_api_key must be a string, not int"),
    ({"openmeter_api_key": "k\r\nX-Injected: 1"},
     "openmeter_api_key must not contain whitespace or control characters"),
    ({"openmeter_api_key": "k", "openmeter_event_type": ""}, "openmeter_event_type must not be empty"),
    ({"openmeter_api_key": "k", "openmeter_event_type": "two words"},
     "openmeter_event_type must not contain whitespace or control characters"),
    ({"openmeter_api_key": "k", "openmeter_event_type": "t" * 257},
     "openmeter_event_type must be at most 256 characters"),
])
def test_bad_vars_name_the_var(vars, message):
    with pytest.raises(ValueError) as info:
        OpenMeterConfig.from_vars(vars)
    assert str(info.value) == message


@pytest.mark.parametrize("endpoint", ["openmeter.cloud", "ftp://openmeter.cloud", "https://", "https://h:0", ""])
def test_endpoint_must_be_an_http_url(endpoint):
    with pytest.raises(ValueError, match=r"^openmeter_api_endpoint must be an http\(s\) URL"):
        OpenMeterConfig.from_vars({"openmeter_api_key": "k", "openmeter_api_endpoint": endpoint})


def test_endpoint_with_credentials_or_a_query_is_refused_without_echoing_it():
    for endpoint in ("https://user:om-SECRET@openmeter.cloud", "https://openmeter.cloud/?key=om-SECRET"):
        with pytest.raises(ValueError) as info:
            OpenMeterConfig.from_vars({"openmeter_api_key": "k", "openmeter_api_endpoint": endpoint})
        assert "openmeter_api_endpoint" in str(info.value) and "SECRET" not in str(info.value)


def test_repr_masks_the_key():
    config = OpenMeterConfig("om-SECRET-key")
    assert repr(config) == ("OpenMeterConfig(api_key='****', api_endpoint='https://openmeter.cloud', "
                            "event_type='spangate_tokens')")
    assert "SECRET" not in str(config)


def test_secret_and_env_var_tables_are_the_seeds():
    assert {"openmeter_api_key"} == SECRET_VARS
    assert ENV_VARS == {"openmeter_api_key": "OPENMETER_API_KEY", "openmeter_api_endpoint": "OPENMETER_API_ENDPOINT",
                        "openmeter_event_type": "OPENMETER_EVENT_TYPE"}
