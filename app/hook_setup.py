"""Builds the hook chain from ``litellm_settings.callbacks``: built-in hooks by name, users'
callback objects by ``module.attribute``, in the order the config lists them."""

from __future__ import annotations

from collections.abc import Mapping

from app.config import GatewayConfig
from app.config_keys import ConfigError
from app.hooks import CallHook, HookChain


def build_hooks(config: GatewayConfig, env: Mapping[str, str]) -> HookChain:
    """Every configured hook, or ``ConfigError`` naming the entry that cannot be built."""
    hooks: list[CallHook] = []
    for name in config.hooks:
        hooks.append(_build(name, config, env))
    return HookChain(hooks)


def _build(name: str, config: GatewayConfig, env: Mapping[str, str]) -> CallHook:
    raise ConfigError(f"litellm_settings.callbacks: {name}: not supported yet")
