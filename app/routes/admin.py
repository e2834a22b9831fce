"""The admin API LiteLLM users know: teams, virtual keys and per-team and per-key logging callbacks.

Only the master key administers. Secrets never leave: keys are shown once at generation, callback
secrets come back as a fixed mask, and a masked value posted back is refused rather than stored.

One controller per resource, each documenting itself in the OpenAPI schema under its tag:
``TeamController`` (``/team/...``, admin_teams.py), ``KeyController`` (``/key/...``, admin_keys.py)
and ``TeamCallbackController`` (``/team/{team_id}/...``, admin_callbacks.py). They reach the gateway
through the ``admin`` dependency (admin_context.py), never through a closure.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Router

from app.routes.admin_callbacks import TeamCallbackController
from app.routes.admin_context import ADMIN_DEPENDENCIES, admin_guard
from app.routes.admin_context import require_admin as require_admin  # health.py guards /health/destinations
from app.routes.admin_fields import refuse_unimplemented
from app.routes.admin_keys import KEY_HEADER as KEY_HEADER  # tests import it from here
from app.routes.admin_keys import KeyController
from app.routes.admin_teams import TeamController
from app.secrets import MASK as MASK  # what GET shows for a secret; tests import it from here
from app.validation import check_json_depth


def admin_routes() -> list[Router]:
    # One guard for the whole admin API, checked before Litestar parses a body or query; then the
    # body's depth, before msgspec decodes it recursively (990 levels was a RecursionError 500), and
    # LiteLLM fields msgspec would otherwise drop without a word.
    return [Router(path="/", guards=[admin_guard], before_request=_check_body, dependencies=ADMIN_DEPENDENCIES,
                   route_handlers=[TeamController, KeyController, TeamCallbackController])]


async def _check_body(request: Request[Any, Any, Any]) -> None:
    if request.method in ("POST", "PUT", "PATCH"):
        raw = await request.body()
        check_json_depth(raw)
        struct = request.route_handler.opt.get("body")
        if struct is not None:
            refuse_unimplemented(raw, struct)
