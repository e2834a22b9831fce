"""LangfuseConfig.from_vars: what a team's callback_vars may hold, and what a bad one says."""

from __future__ import annotations

import pytest

from exporters.langfuse.config import ENV_VARS, SECRET_VARS, LangfuseConfig

SEED_VARS = {
    "langfuse_public_key": "pk",
    "langfuse_secret_key": "sk_",
    "langfuse_host": "https://cloud.langfuse.com",
}
ALLOWED = "langfuse_public_key, langfuse_secret_key, langfuse_secret, langfuse_host"
MISSING = "missing langfuse callback var {!r}; allowed: " + ALLOWED
UNKNOWN = "unknown langfuse callback var {!r}; allowed: " + ALLOWED


def test_seed_vars():
    config = LangfuseConfig.from_vars(SEED_VARS)
    assert config == LangfuseConfig(public_key="pk", secret_key="sk_", host="https://cloud.langfuse.com")
    assert config.traces_url == "https://cloud.langfuse.com/api/public/otel/v1/traces"


def test_host_defaults_to_cloud_and_alias_secret_is_accepted():
    config = LangfuseConfig.from_vars({"langfuse_public_key": "pk", "langfuse_secret": "sk"})
    assert (config.secret_key, config.host) == ("sk", "https://cloud.langfuse.com")


def test_self_hosted_host_keeps_its_path_and_loses_the_trailing_slash():
    config = LangfuseConfig.from_vars({**SEED_VARS, "langfuse_host": " http://10.0.0.5:3000/lf/ "})
    assert config.traces_url == "http://10.0.0.5:3000/lf/api/public/otel/v1/traces"


@pytest.mark.parametrize(
    ("vars", "message"),
    [
        ({"langfuse_secret_key": "sk"}, MISSING.format("langfuse_public_key")),
        ({"langfuse_public_key": "pk"}, MISSING.format("langfuse_secret_key")),
        ({**SEED_VARS, "langfuse_flush": 1}, UNKNOWN.format("langfuse_flush")),
        (
            {**SEED_VARS, "langfuse_secret": "sk2"},
            "give only one of 'langfuse_secret_key' and its alias 'langfuse_secret'",
        ),
        ({**SEED_VARS, "langfuse_public_key": "  "}, "langfuse_public_key must not be empty"),
        ({**SEED_VARS, "langfuse_public_key": 12}, "langfuse_public_key must be a string, not int"),
        ({"langfuse_public_key": "pk", "langfuse_secret": ""}, "langfuse_secret must not be empty"),
        ({**SEED_VARS, "langfuse_public_key": "pk:x"}, "langfuse_public_key must not contain ':'"),
        (
            {**SEED_VARS, "langfuse_secret_key": "sk\nInjected: 1"},
            "langfuse_secret_key must not contain whitespace or control characters",
        ),
    ],
)
def test_bad_vars_name_the_var(vars, message):
    with pytest.raises(ValueError) as info:
        LangfuseConfig.from_vars(vars)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "host",
    ["cloud.langfuse.com", "ftp://cloud.langfuse.com", "https://", "https://h:0", "https://h:99999", ""],
)
def test_host_must_be_an_http_url(host):
    with pytest.raises(ValueError, match=r"^langfuse_host must be an http\(s\) URL such as https://cloud"):
        LangfuseConfig.from_vars({**SEED_VARS, "langfuse_host": host})


def test_host_with_credentials_is_refused_without_echoing_them():
    with pytest.raises(ValueError) as info:
        LangfuseConfig.from_vars({**SEED_VARS, "langfuse_host": "https://pk:sk-lf-SECRET@h.example"})
    assert "langfuse_host" in str(info.value)
    assert "SECRET" not in str(info.value)


def test_repr_masks_the_secret():
    config = LangfuseConfig(public_key="pk-lf-1", secret_key="sk-lf-SECRET")
    assert repr(config) == (
        "LangfuseConfig(public_key='pk-lf-1', secret_key='****', host='https://cloud.langfuse.com')"
    )
    assert "SECRET" not in str(config)


def test_secret_and_env_var_tables():
    assert {"langfuse_secret_key", "langfuse_secret"} == SECRET_VARS
    assert ENV_VARS == {
        "langfuse_public_key": "LANGFUSE_PUBLIC_KEY",
        "langfuse_secret_key": "LANGFUSE_SECRET_KEY",
        "langfuse_host": "LANGFUSE_HOST",
    }
