"""Liveness and readiness, as LiteLLM users' probes expect them."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from litestar import MediaType, Request, Response, get
from litestar.handlers import BaseRouteHandler

from app import __version__
from app.metrics import CONTENT_TYPE, render_prometheus
from app.routes.admin import require_admin

if TYPE_CHECKING:
    from app.server import Gateway


def health_routes(gateway: Gateway) -> list[BaseRouteHandler]:
    @get(["/health/liveliness", "/health/liveness"], include_in_schema=False)
    async def liveliness() -> Response[str]:
        # LiteLLM answers a JSON string; probes and scripts written for it parse that.
        return Response('"I\'m alive!"', media_type="application/json")

    @get("/health/readiness", include_in_schema=False)
    async def readiness() -> Response[dict[str, Any]]:
        # Not ready while the store is unreachable, so a load balancer prefers instances that can
        # also serve the admin API and see revocations; liveliness stays 200 (known keys still work).
        db = gateway.extras.get("db_status", lambda: "Not connected")()
        ready = db == "connected"
        body = {"status": "healthy" if ready else "unhealthy", "db": db, "version": __version__,
                "success_callbacks": list(gateway.config.success_callback),
                "failure_callbacks": list(gateway.config.failure_callback)}
        return Response(body, status_code=200 if ready else 503, media_type=MediaType.JSON)

    @get("/health/destinations", tags=["health"])
    async def destinations(request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Per destination: queued, delivered, retried, failed, dead-lettered, dropped, lag, last error."""
        require_admin(gateway, request)
        return {"destinations": [dataclasses.asdict(h) for h in gateway.delivery.health()]}

    @get("/metrics", include_in_schema=False)
    async def metrics(request: Request[Any, Any, Any]) -> Response[str]:
        if gateway.config.master_key is not None:  # spend and team names are not for anonymous scrapers
            require_admin(gateway, request)
        text = render_prometheus(gateway.extras["metric_reader"].get_metrics_data())
        return Response(text, media_type=CONTENT_TYPE)

    return [liveliness, readiness, destinations, metrics]
