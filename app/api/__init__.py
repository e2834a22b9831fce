"""HTTP routes, grouped by audience; each factory takes the worker's ``Gateway``."""

from app.api.health import health_routes
from app.api.models import llm_routes

__all__ = ["health_routes", "llm_routes"]
