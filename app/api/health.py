"""Liveness, readiness, model reachability and metrics, as LiteLLM users' probes and scrapers expect them."""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
from typing import Any

from litestar import MediaType, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath, FromQuery
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from app import __version__
from app.api.admin import AdminCheck
from app.api.admin.deliveries import MAX_LETTERS, letter_json, selection
from app.api.history import DeliveryHistory
from app.api.models import caller_of
from app.api.prometheus import CONTENT_TYPE, render_prometheus
from app.api.services import ApiSettings, OpenStore
from app.errors import AuthenticationFailed, InvalidRequest, NotFound
from app.gateway.spend import CallLimits
from app.hooks.chain import HookChain
from app.hooks.metrics import hooks_health
from app.providers.reachability import Reachability, ReachabilityCache
from app.teams.auth import Authenticator, bearer_token
from processors.delivery import DeliveryManager, SpoolHealth


@get(["/health/liveliness", "/health/liveness"], include_in_schema=False)
async def liveliness() -> Response[str]:
    # LiteLLM answers a JSON string; probes and scripts written for it parse that.
    return Response('"I\'m alive!"', media_type="application/json")


@get("/health/readiness", include_in_schema=False)
async def readiness(settings: NamedDependency[ApiSettings], delivery: NamedDependency[DeliveryManager],
                    store_link: NamedDependency[OpenStore | None],
                    call_limits: NamedDependency[CallLimits | None] = None) -> Response[dict[str, Any]]:
    # Not ready while the store is unreachable, so a load balancer prefers instances that can
    # also serve the admin API and see revocations; liveliness stays 200 (known keys still work).
    # Nor while the disk refuses the spool: spans are then only in memory, lost in a crash.
    db = store_link.db_status() if store_link is not None else "Not connected"
    spool = delivery.spool_health()
    ready = db == "connected" and spool.state != "failing"
    limiter = call_limits.limiter if call_limits is not None else None
    limits = limiter.readiness() if limiter is not None else None
    if limits is not None and not limits.get("healthy", True) and not limits.get("fail_open", True):
        ready = False  # failing closed: this instance refuses limited keys' calls until its counters are back
    body = {"status": "healthy" if ready else "unhealthy", "db": db, "spool": _spool_line(spool),
            "version": __version__,
            "success_callbacks": list(settings.success_callback),
            "failure_callbacks": list(settings.failure_callback)}
    if limits is not None:
        body["limits"] = limits
    return Response(body, status_code=200 if ready else 503, media_type=MediaType.JSON)


@get("/health/destinations", tags=["health"])
async def destinations(delivery: NamedDependency[DeliveryManager], hooks: NamedDependency[HookChain]) -> dict[str, Any]:
    """Per destination: queued, delivered, retried, failed, dead-lettered, dropped, lag, last error;
    the spool: ok, or failing with the spans held in memory meanwhile; per callback (hook):
    background runs, errors, timeouts, dropped runs, last error type. Master key only (admin/access.py)."""
    return {"destinations": [dataclasses.asdict(h) for h in delivery.health()],
            "spool": dataclasses.asdict(delivery.spool_health()),
            "callbacks": hooks_health(hooks)}


@post("/health/destinations/{name:str}/replay", tags=["health"], status_code=200)
async def replay_destination(request: Request[Any, Any, Any], delivery: NamedDependency[DeliveryManager],
                             name: FromPath[str]) -> dict[str, int]:
    """A gateway-wide destination's dead letters back on its queue (body as a team's replay); master key
    only, by the admin API's access guard (``app.api.admin.access``)."""
    pick = selection(await request.body())
    key = await _global_key(delivery, name)
    return {"replayed": await asyncio.to_thread(delivery.replay, key, pick)}


@get("/health/destinations/history", tags=["health"])
async def destinations_history(delivery: NamedDependency[DeliveryManager],
                               history: NamedDependency[DeliveryHistory]) -> dict[str, Any]:
    """The last hour of each gateway-wide destination, as a team's (``/team/{id}/deliveries/history``)."""
    found = [h for h in await asyncio.to_thread(delivery.health)
             if h.key.startswith("global/") and h.state != "orphaned"]
    return {"interval_seconds": history.interval,
            "destinations": [{"name": h.name, "samples": history.samples(h.key)} for h in found]}


@get("/health/destinations/{name:str}/dead_letters", tags=["health"])
async def destination_dead_letters(delivery: NamedDependency[DeliveryManager], name: FromPath[str],
                                   limit: FromQuery[int] = 100) -> dict[str, Any]:
    """A gateway-wide destination's newest dead letters, as a team's are listed (ids, times, model,
    short reason; never content); master key only, as its replay."""
    if not 1 <= limit <= MAX_LETTERS:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LETTERS}", param="limit", code="invalid_value")
    key = await _global_key(delivery, name)
    letters = await asyncio.to_thread(delivery.dead_letters, key, limit)
    return {"name": name, "dead_letters": [letter_json(d) for d in sorted(letters, key=lambda d: d.at)[-limit:]]}


async def _global_key(delivery: DeliveryManager, name: str) -> str:
    key = f"global/{name}"
    if not any(h.key == key and h.state != "orphaned" for h in await asyncio.to_thread(delivery.health)):
        raise NotFound(f"no gateway-wide destination {name!r}", param="name", code="destination_not_found")
    return key


@get("/health", tags=["health"])
async def models_health(request: Request[Any, Any, Any], auth: NamedDependency[Authenticator],
                        settings: NamedDependency[ApiSettings], reachability: NamedDependency[ReachabilityCache],
                        model: FromQuery[str | None] = None) -> dict[str, Any]:
    """LiteLLM's model check: each deployment the caller may use, healthy when its upstream accepts a
    TCP connection (no API call, nothing billed; a verdict is reused for 5 s); mocks are always healthy."""
    caller = caller_of(auth, request)
    wanted = [d for d in settings.deployments
              if caller.may_use(d.model_name) and (model is None or d.model_name == model)]
    results = await reachability.check_all(wanted)
    healthy = [_endpoint(r) for r in results if r.error is None]
    unhealthy = [_endpoint(r) for r in results if r.error is not None]
    return {"healthy_endpoints": healthy, "unhealthy_endpoints": unhealthy,
            "healthy_count": len(healthy), "unhealthy_count": len(unhealthy)}


@get("/metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any], settings: NamedDependency[ApiSettings],
                  admin_check: NamedDependency[AdminCheck],
                  metric_reader: NamedDependency[InMemoryMetricReader]) -> Response[str]:
    check_scraper(settings, admin_check, request)
    text = render_prometheus(metric_reader.get_metrics_data())
    return Response(text, media_type=CONTENT_TYPE)


def health_routes() -> list[BaseRouteHandler]:
    return [liveliness, readiness, models_health, metrics]


def admin_health_routes() -> list[BaseRouteHandler]:
    """Served under the admin API's access guard (``app.api.admin.admin_routes``)."""
    return [destinations, destinations_history, destination_dead_letters, replay_destination]


def check_scraper(settings: ApiSettings, admin_check: AdminCheck, request: Request[Any, Any, Any]) -> None:
    """``spangate_settings.metrics_auth``: spend and team names are not for anonymous scrapers unless the
    operator opens them; a scrape token spares Prometheus the master key."""
    auth, master_key = settings.metrics_auth, settings.master_key
    if auth.open or (master_key is None and auth.token is None):
        return
    token = bearer_token(request.headers)
    if auth.token is not None and token is not None and hmac.compare_digest(token.encode(), auth.token.encode()):
        return
    if master_key is None:
        raise AuthenticationFailed("missing or wrong scrape token: send 'Authorization: Bearer <metrics_auth token>'")
    admin_check.require(request)


def _spool_line(spool: SpoolHealth) -> str:
    if spool.state != "failing":
        return spool.state
    return f"failing ({spool.reason}); {spool.held_in_memory} spans held in memory"


def _endpoint(result: Reachability) -> dict[str, Any]:
    config = result.deployment
    shown = {"model": config.model_name, "deployment_id": config.deployment_id, "provider": config.provider,
             "address": result.address}
    return shown if result.error is None else {**shown, "error": result.error}
