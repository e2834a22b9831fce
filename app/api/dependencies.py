"""The services a route may ask for, by parameter name: ``name: NamedDependency[TheService]``.

``app.server.factory`` builds the services and hands them to ``api_dependencies`` once per app; a
route declares only the ones it reads, so no route sees the whole gateway (and none imports the
server). ``store_link`` is read per request: the store opens in the app's lifespan, after the app
is built. Each value's type is a plain class or a Protocol from ``app.api.services`` (see there why).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.di import Provide
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from app.api.admin import AdminCheck
from app.api.admin.callback_entries import CallbackRules
from app.api.admin.callbacks import DestinationTester
from app.api.history import DeliveryHistory
from app.api.services import OpenStore
from app.config.settings import GatewayConfig
from app.gateway.spend import CallLimits
from app.hooks.chain import HookChain
from app.providers.reachability import ReachabilityCache
from app.teams.auth import Authenticator
from app.teams.directory import TeamDirectory
from app.wire.egress import ProxyRoutes
from exporters.registry import BuildContext, DestinationRegistry
from processors.delivery import DeliveryManager


def api_dependencies(*, settings: GatewayConfig, auth: Authenticator, admin_check: AdminCheck,
                     teams: TeamDirectory, registry: DestinationRegistry, delivery: DeliveryManager,
                     hooks: HookChain, metric_reader: InMemoryMetricReader, resource: Resource,
                     build_ctx: BuildContext, store_link: Callable[[], OpenStore | None],
                     history: DeliveryHistory, call_limits: CallLimits | None = None) -> dict[str, Provide]:
    """The app-level ``dependencies``; the admin router adds ``admin`` (admin/context.py)."""
    fixed: dict[str, Any] = {
        "settings": settings, "auth": auth, "admin_check": admin_check, "teams": teams, "delivery": delivery,
        "hooks": hooks, "metric_reader": metric_reader, "history": history,
        "call_limits": call_limits or CallLimits(),
        # Read once, as the upstream transport does.
        "reachability": ReachabilityCache(ProxyRoutes.from_settings(settings.upstream_proxy)),
        "rules": CallbackRules(registry, settings.callback_policy, store_link),
        "tester": DestinationTester(teams, registry, resource, build_ctx),
    }
    return {**{name: _fixed(value) for name, value in fixed.items()},
            "store_link": Provide(store_link, sync_to_thread=False)}


def _fixed(value: Any) -> Provide:
    return Provide(lambda: value, use_cache=True, sync_to_thread=False)
