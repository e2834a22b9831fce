"""GenericConfig.from_vars: the team and env forms, and what a bad var says (never its value)."""

from __future__ import annotations

import pytest

from exporters.generic.config import ENV_VARS, SECRET_VARS, GenericConfig, LogFormat

ALLOWED = "generic_logger_endpoint, generic_logger_headers, generic_logger_format"


def test_seed_env_form_with_headers():
    config = GenericConfig.from_vars({"generic_logger_endpoint": "http://localhost:4000/log-event",
                                      "generic_logger_headers": "Authorization=Bearer tok,X-Team = a=b"})
    assert config == GenericConfig("http://localhost:4000/log-event",
                                   {"Authorization": "Bearer tok", "X-Team": "a=b"}, LogFormat.SINGLE)


def test_headers_as_an_object_and_batch_formats():
    config = GenericConfig.from_vars({"generic_logger_endpoint": "https://HOOKS.example.com/in/",
                                      "generic_logger_headers": {"X-Token": "t"}, "generic_logger_format": "NDJSON"})
    assert hash(config) == hash(GenericConfig(config.endpoint, {"X-Token": "t"}, LogFormat.NDJSON))
    assert (config.endpoint, dict(config.headers), config.format) == (
        "https://hooks.example.com/in/", {"X-Token": "t"}, LogFormat.NDJSON)
    assert GenericConfig.from_vars({"generic_logger_endpoint": "http://h/x",
                                    "generic_logger_format": "json_array"}).format is LogFormat.JSON_ARRAY


@pytest.mark.parametrize(("vars", "message"), [
    ({}, f"missing generic callback var 'generic_logger_endpoint'; allowed: {ALLOWED}"),
    ({"generic_logger_endpoint": "http://h", "endpoint": "x"},
     f"unknown generic callback var 'endpoint'; allowed: {ALLOWED}"),
    ({"generic_logger_endpoint": "http://h", "generic_logger_format": "csv"},
     "generic_logger_format must be one of single, json_array, ndjson"),
    ({"generic_logger_endpoint": "http://h", "generic_logger_headers": "Authorization"},
     "generic_logger_headers must be name=value pairs separated by commas"),
    ({"generic_logger_endpoint": "http://h", "generic_logger_headers": "Bad Name=SECRET"},
     "generic_logger_headers has an invalid header name"),
    ({"generic_logger_endpoint": "http://h", "generic_logger_headers": {"X": "SECRET\r\nInjected: 1"}},
     "generic_logger_headers: header 'X' must have a string value without control characters"),
    ({"generic_logger_endpoint": "http://h", "generic_logger_headers": "Content-Type=text/plain"},
     "generic_logger_headers: header 'Content-Type' is set by the gateway and cannot be given"),
    ({"generic_logger_endpoint": "http://h", "generic_logger_headers": 5},
     "generic_logger_headers must be a 'k=v,k2=v2' string or an object, not int"),
    ({"generic_logger_endpoint": "http://h/hook?token=SECRET"},
     "generic_logger_endpoint is a base URL: it must not have a query or a fragment ('?' or '#')"),
    ({"generic_logger_endpoint": "https://u:SECRET@h/hook"},
     "generic_logger_endpoint must not carry credentials (user:password@)"),
    ({"generic_logger_endpoint": "localhost:4000/log-event"},
     "generic_logger_endpoint must be an http(s) URL such as https://cloud.langfuse.com"),
])
def test_bad_vars_name_the_var_and_never_the_secret(vars, message):
    with pytest.raises(ValueError) as info:
        GenericConfig.from_vars(vars)
    assert str(info.value) == message
    assert "SECRET" not in str(info.value)


def test_repr_shows_header_names_only():
    config = GenericConfig.from_vars({"generic_logger_endpoint": "http://h/x",
                                      "generic_logger_headers": "Authorization=Bearer SECRET"})
    assert repr(config) == "GenericConfig(endpoint='http://h/x', headers=['Authorization'], format='single')"


def test_secret_and_env_tables():
    assert {"generic_logger_headers"} == SECRET_VARS
    assert ENV_VARS == {"generic_logger_endpoint": "GENERIC_LOGGER_ENDPOINT",
                        "generic_logger_headers": "GENERIC_LOGGER_HEADERS",
                        "generic_logger_format": "GENERIC_LOGGER_FORMAT"}
