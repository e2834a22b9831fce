"""Builds the hook chain from ``litellm_settings.callbacks``: built-in hooks by name, users'
callback objects by ``module.attribute``, in the order the config lists them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.callback_hook import callback_hook
from app.callback_loader import HANDLER, is_user_callback, load_callback
from app.config import GatewayConfig
from app.config_keys import ConfigError
from app.hooks import CallHook, HookChain


def build_hooks(config: GatewayConfig, env: Mapping[str, str], *, tracer_provider: Any = None) -> HookChain:
    """Every configured hook, or ``ConfigError`` naming the entry that cannot be built.
    ``tracer_provider``: for hooks that make calls of their own (child spans of the gateway span);
    ``None`` when start-up only checks the config."""
    hooks: list[CallHook] = []
    for name in config.hooks:
        hook = _build(name, config, env, tracer_provider)
        if hook is not None:
            hooks.append(hook)
    return HookChain(hooks)


def _build(name: str, config: GatewayConfig, env: Mapping[str, str], tracer_provider: Any) -> CallHook | None:
    """The hook for one entry; ``None`` for a user's SpanExporter or SpanProcessor, which is a
    destination (``app.user_destinations``) even when listed under ``callbacks``."""
    if is_user_callback(name):
        loaded = load_callback(name, config.config_dir)
        return callback_hook(name, loaded.obj) if loaded.kind == HANDLER else None
    raise ConfigError(f"litellm_settings.callbacks: {name}: not supported yet")
