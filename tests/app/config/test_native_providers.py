"""Native providers' ``litellm_params``: where calls go and which key, settled at start-up."""

from __future__ import annotations

from app.config.provider_kind import ProviderKind
from app.config.settings import parse_config


def _one(model: str, env: dict[str, str] | None = None, **params: object):
    raw = {"model_list": [{"model_name": "m", "litellm_params": {"model": model, **params}}]}
    return parse_config(raw, environ=env or {}).deployments[0]


def test_anthropic_goes_to_its_own_host_with_the_key_from_its_variable() -> None:
    d = _one("anthropic/claude-sonnet-4-5", {"ANTHROPIC_API_KEY": "sk-ant-env"})
    assert d.kind is ProviderKind.ANTHROPIC and d.kind.native
    assert (d.api_base, d.api_key, d.upstream_model) == ("https://api.anthropic.com", "sk-ant-env", "claude-sonnet-4-5")


def test_an_api_key_and_api_base_given_win_over_the_defaults() -> None:
    d = _one("gemini/gemini-2.5-flash", {"GEMINI_API_KEY": "env"}, api_key="given", api_base="http://127.0.0.1:9/")
    assert (d.api_base, d.api_key) == ("http://127.0.0.1:9", "given")


def test_a_native_providers_own_keys_are_not_sent_as_request_parameters() -> None:
    raw = {"model_list": [{"model_name": "m", "litellm_params": {
        "model": "anthropic/claude-x", "api_key": "k", "temperature": 0.2}}]}
    config = parse_config(raw, environ={})
    assert dict(config.deployments[0].default_params) == {"temperature": 0.2}
    assert config.warnings == ()
