"""HTTP routes, grouped by audience; each factory takes the worker's ``Gateway``."""

from app.routes.health import health_routes
from app.routes.llm import llm_routes

__all__ = ["health_routes", "llm_routes"]
