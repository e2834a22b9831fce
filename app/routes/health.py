"""Liveness and readiness, as LiteLLM users' probes expect them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import get
from litestar.handlers import BaseRouteHandler

from app import __version__

if TYPE_CHECKING:
    from app.server import Gateway


def health_routes(gateway: Gateway) -> list[BaseRouteHandler]:
    @get(["/health/liveliness", "/health/liveness"], include_in_schema=False)
    async def liveliness() -> str:
        return "I'm alive!"

    @get("/health/readiness", include_in_schema=False)
    async def readiness() -> dict[str, Any]:
        db = gateway.extras.get("db_status", lambda: "Not connected")()
        return {"status": "healthy", "db": db, "version": __version__,
                "success_callbacks": list(gateway.config.success_callback),
                "failure_callbacks": list(gateway.config.failure_callback)}

    return [liveliness, readiness]
