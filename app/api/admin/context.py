"""What every admin controller needs: the master-key guard and ``AdminContext``, the gateway as seen
by the admin API (its store, the watcher's refresh, team lookups), injected as the ``admin`` dependency.

Controllers are plain classes Litestar instantiates per request, so nothing is closed over: the
gateway comes from the app's state (``create_app`` puts it there), once per request through ``Provide``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, TypeAlias

from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.handlers import BaseRouteHandler

from app.calls.caller import Caller
from app.errors import AuthenticationFailed, NotFound, PermissionDenied
from app.store import StoreSnapshot, StoreUnavailable, TeamRecord
from app.teams.auth import bearer_token

if TYPE_CHECKING:
    from app.server.factory import Gateway, StoreLink
    from app.store import Store


def require_admin(gateway: Gateway, request: ASGIConnection[Any, Any, Any, Any]) -> Caller:
    if gateway.config.master_key is None:
        raise PermissionDenied("the admin API is disabled: set general_settings.master_key")
    token = bearer_token(request.headers)
    if token is None:
        raise AuthenticationFailed("missing API key: send 'Authorization: Bearer <master key>'")
    caller = gateway.auth.authenticate(token)
    if not caller.is_admin:
        raise PermissionDenied("only the master key can use admin routes", code="admin_only")
    return caller


async def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    # Guards run before Litestar parses the body and query: without it a caller lacking the master
    # key got 400 with the admin API's validation details instead of 401/403. Async, though it never
    # waits: Litestar runs a sync guard in a worker thread.
    require_admin(connection.app.state["gateway"], connection)


class AdminContext:
    # A plain class, not a dataclass: Litestar's signature model would resolve a dataclass's field
    # types (``Gateway``, imported only for type checking) when it builds each handler.
    __slots__ = ("gateway",)

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def _link(self) -> StoreLink:
        link = self.gateway.store_link
        if link is None:  # only before the lifespan has opened the store
            raise StoreUnavailable("the team and key store is not open yet")
        return link

    @property
    def store(self) -> Store:
        return self._link().store

    @property
    def snapshot(self) -> StoreSnapshot | None:
        """What this instance serves from (the keys and their entries as the request path sees them)."""
        return self._link().watcher.snapshot

    async def refresh(self) -> None:
        # This instance sees its own write at once. The write is committed before this runs, so a
        # store gone in between must not turn it into a 503; the watcher's next poll applies it.
        with contextlib.suppress(StoreUnavailable):
            await self._link().watcher.refresh()

    async def known_team(self, team_id: str) -> TeamRecord | None:
        """The team's store row; None for a team that exists only in the config; else a 404."""
        team = await self.store.get_team(team_id)
        if team is None and team_id not in self.gateway.teams.config_team_ids:
            raise NotFound(f"team {team_id!r} does not exist", param="team_id", code="team_not_found")
        return team


Admin: TypeAlias = NamedDependency[AdminContext]  # how a handler asks for it: ``admin: Admin``


def _provide_admin(state: State) -> AdminContext:
    return AdminContext(state["gateway"])


ADMIN_DEPENDENCIES = {"admin": Provide(_provide_admin, sync_to_thread=False)}
