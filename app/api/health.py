"""Liveness, readiness, model reachability and metrics, as LiteLLM users' probes and scrapers expect them."""

from __future__ import annotations

import dataclasses
import hmac
from typing import TYPE_CHECKING, Any

from litestar import MediaType, Request, Response, get
from litestar.handlers import BaseRouteHandler
from litestar.params import FromQuery

from app import __version__
from app.api.admin import require_admin
from app.api.models import caller_of
from app.api.prometheus import CONTENT_TYPE, render_prometheus
from app.errors import AuthenticationFailed
from app.hooks.metrics import hooks_health
from app.providers.reachability import Reachability, ReachabilityCache
from app.teams.auth import bearer_token
from app.wire.egress import ProxyRoutes
from processors.delivery import SpoolHealth

if TYPE_CHECKING:
    from app.server.factory import Gateway


def health_routes(gateway: Gateway) -> list[BaseRouteHandler]:
    proxies = ProxyRoutes.from_settings(gateway.config.upstream_proxy)  # read once, as the upstream transport does
    reachability = ReachabilityCache(proxies)
    @get(["/health/liveliness", "/health/liveness"], include_in_schema=False)
    async def liveliness() -> Response[str]:
        # LiteLLM answers a JSON string; probes and scripts written for it parse that.
        return Response('"I\'m alive!"', media_type="application/json")

    @get("/health/readiness", include_in_schema=False)
    async def readiness() -> Response[dict[str, Any]]:
        # Not ready while the store is unreachable, so a load balancer prefers instances that can
        # also serve the admin API and see revocations; liveliness stays 200 (known keys still work).
        # Nor while the disk refuses the spool: spans are then only in memory, lost in a crash.
        db = gateway.store_link.db_status() if gateway.store_link is not None else "Not connected"
        spool = gateway.delivery.spool_health()
        ready = db == "connected" and spool.state != "failing"
        body = {"status": "healthy" if ready else "unhealthy", "db": db, "spool": _spool_line(spool),
                "version": __version__,
                "success_callbacks": list(gateway.config.success_callback),
                "failure_callbacks": list(gateway.config.failure_callback)}
        return Response(body, status_code=200 if ready else 503, media_type=MediaType.JSON)

    @get("/health/destinations", tags=["health"])
    async def destinations(request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Per destination: queued, delivered, retried, failed, dead-lettered, dropped, lag, last error;
        the spool: ok, or failing with the spans held in memory meanwhile; per callback (hook):
        background runs, errors, timeouts, dropped runs, last error type."""
        require_admin(gateway, request)
        return {"destinations": [dataclasses.asdict(h) for h in gateway.delivery.health()],
                "spool": dataclasses.asdict(gateway.delivery.spool_health()),
                "callbacks": hooks_health(gateway.proxy.hooks)}

    @get("/health", tags=["health"])
    async def models_health(request: Request[Any, Any, Any], model: FromQuery[str | None] = None) -> dict[str, Any]:
        """LiteLLM's model check: each deployment the caller may use, healthy when its upstream accepts a
        TCP connection (no API call, nothing billed; a verdict is reused for 5 s); mocks are always healthy."""
        caller = caller_of(gateway, request)
        wanted = [d for d in gateway.config.deployments
                  if caller.may_use(d.model_name) and (model is None or d.model_name == model)]
        results = await reachability.check_all(wanted)
        healthy = [_endpoint(r) for r in results if r.error is None]
        unhealthy = [_endpoint(r) for r in results if r.error is not None]
        return {"healthy_endpoints": healthy, "unhealthy_endpoints": unhealthy,
                "healthy_count": len(healthy), "unhealthy_count": len(unhealthy)}

    @get("/metrics", include_in_schema=False)
    async def metrics(request: Request[Any, Any, Any]) -> Response[str]:
        check_scraper(gateway, request)
        text = render_prometheus(gateway.metric_reader.get_metrics_data())
        return Response(text, media_type=CONTENT_TYPE)

    return [liveliness, readiness, destinations, models_health, metrics]


def check_scraper(gateway: Gateway, request: Request[Any, Any, Any]) -> None:
    """``spangate_settings.metrics_auth``: spend and team names are not for anonymous scrapers unless the
    operator opens them; a scrape token spares Prometheus the master key."""
    auth, master_key = gateway.config.metrics_auth, gateway.config.master_key
    if auth.open or (master_key is None and auth.token is None):
        return
    token = bearer_token(request.headers)
    if auth.token is not None and token is not None and hmac.compare_digest(token.encode(), auth.token.encode()):
        return
    if master_key is None:
        raise AuthenticationFailed("missing or wrong scrape token: send 'Authorization: Bearer <metrics_auth token>'")
    require_admin(gateway, request)


def _spool_line(spool: SpoolHealth) -> str:
    if spool.state != "failing":
        return spool.state
    return f"failing ({spool.reason}); {spool.held_in_memory} spans held in memory"


def _endpoint(result: Reachability) -> dict[str, Any]:
    config = result.deployment
    shown = {"model": config.model_name, "deployment_id": config.deployment_id, "provider": config.provider,
             "address": result.address}
    return shown if result.error is None else {**shown, "error": result.error}
