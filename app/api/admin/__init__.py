"""The admin API LiteLLM users know: teams, their members and admins, users, virtual keys and per-team
and per-key logging callbacks.

The master key administers everything; a team admin's key its own team's callbacks, keys and info,
as the one table in access.py says (its guard runs before any handler). Secrets never leave: keys
are shown once at generation, callback secrets come back as a fixed mask, and a masked value posted
back is refused rather than stored.

One controller per resource, each documenting itself in the OpenAPI schema under its tag:
``TeamController`` (``/team/...``, teams.py), ``KeyController`` (``/key/...``, keys.py),
``TeamCallbackController`` (``/team/{team_id}/...``, callbacks.py), ``TeamDeliveryController`` (its
ledger, dead letters and replay, deliveries.py), ``TeamMemberController``
(``/team/member_*``) and ``UserController`` (``/user/...``, users.py). They reach the store through the
``admin`` dependency and check entries with ``rules`` (context.py), never through a closure.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Router
from litestar.types import ControllerRouterHandler

from app.api.admin.access import KEY_HEADER as KEY_HEADER  # tests import it from here
from app.api.admin.access import access_guard
from app.api.admin.callbacks import TeamCallbackController
from app.api.admin.context import ADMIN_DEPENDENCIES
from app.api.admin.context import AdminCheck as AdminCheck  # /metrics checks the master key with it
from app.api.admin.deliveries import TeamDeliveryController
from app.api.admin.keys import KeyController
from app.api.admin.teams import TeamController
from app.api.admin.unsupported import refuse_unimplemented
from app.api.admin.users import TeamMemberController, UserController
from app.gateway.validation import check_json_depth
from app.teams.secrets import MASK as MASK  # what GET shows for a secret; tests import it from here


def admin_routes(check: AdminCheck, *more: ControllerRouterHandler) -> list[Router]:
    # One guard for the whole admin API, checked before Litestar parses a body or query; then the
    # body's depth, before msgspec decodes it recursively (990 levels was a RecursionError 500), and
    # LiteLLM fields msgspec would otherwise drop without a word. ``more``: admin routes that live
    # elsewhere (/health/destinations), under the same guard.
    return [Router(path="/", guards=[access_guard(check)], before_request=_check_body,
                   dependencies=ADMIN_DEPENDENCIES,
                   route_handlers=[TeamController, KeyController, TeamCallbackController, TeamDeliveryController,
                                   TeamMemberController,
                                   UserController, *more])]


async def _check_body(request: Request[Any, Any, Any]) -> None:
    if request.method in ("POST", "PUT", "PATCH"):
        raw = await request.body()
        check_json_depth(raw)
        struct = request.route_handler.opt.get("body")
        if struct is not None:
            refuse_unimplemented(raw, struct)
