"""Builds the hook chain from ``litellm_settings.callbacks``: built-in hooks by name, users'
callback objects by ``module.attribute``, in the order the config lists them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from opentelemetry.metrics import Meter, NoOpMeter
from opentelemetry.trace import Tracer

from app.config.keys import ConfigError
from app.config.settings import GatewayConfig
from app.hooks.chain import CallHook, HookChain
from app.hooks.moderation import SECTION, build_content_safety
from app.hooks.moderation import check_config as check_moderation
from app.litellm.hook import callback_hook
from app.litellm.loader import UserCallbackKind, is_user_callback, load_callback
from app.wire.egress import ProxyRoutes
from app.wire.http11 import Http11Transport

CONTENT_SAFETY = "azure_content_safety"


@dataclass(frozen=True, slots=True)
class HookResources:
    """What one worker's gateway lends its built-in hooks (``app.server.factory.build_gateway``)."""

    # Builds the hooks' own pool, never the deployments' (app.server.factory): egress proxy choice, child
    # spans. Called only by a hook that makes calls, which closes what it gets: no hook, no pool.
    new_transport: Callable[[], httpx.AsyncBaseTransport]
    meter: Meter
    # TeamDirectory.hook_params: (team_id, section) -> that team's settings for a hook, or None
    team_params: Callable[[str | None, str], Mapping[str, Any] | None] | None = None
    tracer: Tracer | None = None  # the gateway's: moderation's checks are guardrail spans of the call


def build_hooks(config: GatewayConfig, env: Mapping[str, str], *,
                resources: HookResources | None = None) -> HookChain:
    """Every configured hook, or ``ConfigError`` naming the entry that cannot be built.
    ``resources``: what the built-in hooks use (a transport of their own, instrumented like the
    deployments', so their calls are child spans of the gateway span and take the egress proxy);
    ``None`` outside a gateway."""
    hooks: list[CallHook] = []
    for name in config.hooks:
        hook = _content_safety(config, resources) if name == CONTENT_SAFETY else _user_callback(name, config)
        if hook is not None:
            hooks.append(hook)
    return HookChain(hooks)


def check_hooks(config: GatewayConfig) -> None:
    """The built-in hooks' settings, checked before the server binds or forks workers (ConfigError)."""
    if CONTENT_SAFETY in config.hooks:
        check_moderation(config)


def _user_callback(name: str, config: GatewayConfig) -> CallHook | None:
    """The hook for one entry; ``None`` for a user's SpanExporter or SpanProcessor, which is a
    destination (``app.litellm.destinations``) even when listed under ``callbacks``."""
    if is_user_callback(name):
        loaded = load_callback(name, config.config_dir)
        return callback_hook(name, loaded.obj) if loaded.kind is UserCallbackKind.HANDLER else None
    raise ConfigError(f"litellm_settings.callbacks: {name}: not a known hook or a module.attribute")


def _content_safety(config: GatewayConfig, resources: HookResources | None) -> CallHook:
    if resources is None:  # a chain built outside a gateway (tools, tests): its own direct transport
        transport = Http11Transport(proxies=ProxyRoutes.from_settings(config.upstream_proxy))
        return build_content_safety(config, transport=transport, meter=NoOpMeter("spangate"), team_params=None,
                                    owns_transport=True)
    lookup = resources.team_params
    return build_content_safety(config, transport=resources.new_transport(), meter=resources.meter,
                                team_params=(lambda team_id: lookup(team_id, SECTION)) if lookup else None,
                                owns_transport=True, tracer=resources.tracer)
