"""HTTP routes, grouped by audience: admin/ (teams, keys, callbacks), spend.py (the spend log), health.py,
models.py, budgets.py (the limit fields admin/ takes and shows), ui/ (the admin page, which calls admin/),
and the services they ask for by name (dependencies.py); ``app.server.factory`` registers both."""

from litestar.types import ControllerRouterHandler

from app.api.admin import AdminCheck, admin_routes
from app.api.dependencies import api_dependencies
from app.api.health import admin_health_routes, health_routes
from app.api.history import DeliveryHistory
from app.api.models import llm_routes
from app.api.spend import spend_routes
from app.api.ui import ui_routes


def api_routes(admin_check: AdminCheck) -> list[ControllerRouterHandler]:
    return [*llm_routes(), *health_routes(), *admin_routes(admin_check, *admin_health_routes(), *spend_routes()),
            *ui_routes()]


__all__ = ["AdminCheck", "DeliveryHistory", "api_dependencies", "api_routes"]
