"""``anthropic/`` litellm_params (``app.config.providers.anthropic``): key, default max_tokens, drop_params."""

from __future__ import annotations

from typing import Any

import pytest

from app.config.keys import ConfigError
from app.config.providers.anthropic import AnthropicParams, documented_max_output
from app.config.settings import parse_config


def _one(model: str, env: dict[str, str] | None = None, **params: Any):
    raw = {"model_list": [{"model_name": "m", "litellm_params": {"model": model, **params}}]}
    return parse_config(raw, environ=env if env is not None else {"ANTHROPIC_API_KEY": "sk-ant-env"}).deployments[0]


@pytest.mark.parametrize(("model", "most"), [
    ("claude-opus-5", 128_000), ("claude-sonnet-5-5", 128_000), ("claude-haiku-5-5", 128_000),
    ("claude-opus-4-6", 128_000), ("claude-opus-4-5-20251101", 64_000), ("claude-sonnet-4-5@20250929", 64_000),
    ("claude-haiku-4-5", 64_000), ("claude-sonnet-4-20250514", 64_000), ("claude-opus-4-20250514", 32_000),
    ("claude-opus-4-1", 32_000), ("claude-3-5-haiku-latest", 8_192), ("claude-3-haiku-20240307", 4_096),
    ("claude-opus-4-10", 32_000), ("my-finetune", None)])
def test_the_documented_maximum_output_is_read_from_the_model_name(model: str, most: int | None) -> None:
    assert documented_max_output(model) == most


def test_max_tokens_defaults_to_the_param_then_the_model_then_4096() -> None:
    assert _one("anthropic/claude-haiku-4-5").params == AnthropicParams(64_000)
    assert _one("anthropic/claude-haiku-4-5", max_tokens=512).params == AnthropicParams(512)
    assert _one("anthropic/claude-next-thing").params == AnthropicParams(4096)
    assert _one("anthropic/claude-haiku-4-5", drop_params=True).params == AnthropicParams(64_000, drop_params=True)


def test_its_own_keys_are_not_default_request_params() -> None:
    d = _one("anthropic/claude-haiku-4-5", max_tokens=512, drop_params=True, top_k=3)
    assert dict(d.default_params) == {"top_k": 3}


@pytest.mark.parametrize(("params", "env", "message"), [
    ({}, {}, "model_list[0].litellm_params.api_key: required for anthropic/ deployments (or ANTHROPIC_API_KEY)"),
    ({"max_tokens": 0}, None, "model_list[0].litellm_params.max_tokens: expected a whole number >= 1, got 0"),
    ({"max_tokens": "lots"}, None, "model_list[0].litellm_params.max_tokens: expected a whole number >= 1"),
    ({"drop_params": "maybe"}, None, "model_list[0].litellm_params.drop_params: expected true or false"),
])
def test_a_bad_or_missing_value_stops_start_up_naming_the_key(params: dict[str, Any], env: dict[str, str] | None,
                                                              message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _one("anthropic/claude-haiku-4-5", env, **params)
    assert str(caught.value).startswith(message)
