"""What every admin controller needs: ``AdminCheck``, who is calling (read by the access guard,
access.py), and ``AdminContext``, the store as the admin API sees it (its rows, the watcher's
refresh, team lookups), injected as the ``admin`` dependency; and ``CallbackRules``, what a logging
entry is checked against, as ``rules``.

Controllers are plain classes Litestar instantiates per request, so nothing is closed over: the
context is built once per request through ``Provide`` from the app's services (``app.api.dependencies``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, TypeAlias

from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide

from app.api.admin.callback_entries import CallbackRules
from app.api.services import OpenStore
from app.calls.caller import Caller
from app.errors import AuthenticationFailed, NotFound, PermissionDenied
from app.store import Store, StoreSnapshot, StoreUnavailable, TeamRecord
from app.teams.auth import Authenticator, bearer_token
from app.teams.directory import TeamDirectory


class AdminCheck:
    """Who calls the admin API (``caller``, for the access guard) and the master-key check /metrics
    makes itself (``require``)."""

    __slots__ = ("_auth", "_master_key")

    def __init__(self, master_key: str | None, auth: Authenticator) -> None:
        self._master_key = master_key
        self._auth = auth

    def caller(self, request: ASGIConnection[Any, Any, Any, Any]) -> Caller:
        """The authenticated caller: 401 without a key or with a bad one; 403 while there is no master key."""
        if self._master_key is None:
            raise PermissionDenied("the admin API is disabled: set general_settings.master_key")
        token = bearer_token(request.headers)
        if token is None:
            raise AuthenticationFailed("missing API key: send 'Authorization: Bearer <master key>'")
        return self._auth.authenticate(token)

    def require(self, request: ASGIConnection[Any, Any, Any, Any]) -> Caller:
        caller = self.caller(request)
        if not caller.is_admin:
            raise PermissionDenied("only the master key can use admin routes", code="admin_only")
        return caller

    @property
    def keys(self) -> Mapping[str, Caller]:
        """The key index as the request path sees it (hash -> Caller), replaced whole by the watcher."""
        return self._auth.keys


class AdminContext:
    __slots__ = ("_store_link", "_teams")

    def __init__(self, store_link: OpenStore | None, teams: TeamDirectory) -> None:
        self._store_link = store_link
        self._teams = teams

    def _link(self) -> OpenStore:
        link = self._store_link
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
        if team is None and team_id not in self._teams.config_team_ids:
            raise NotFound(f"team {team_id!r} does not exist", param="team_id", code="team_not_found")
        return team


Admin: TypeAlias = NamedDependency[AdminContext]  # how a handler asks for it: ``admin: Admin``
Rules: TypeAlias = NamedDependency[CallbackRules]  # ``rules: Rules``, where a handler saves logging entries


def _provide_admin(store_link: NamedDependency[OpenStore | None],
                   teams: NamedDependency[TeamDirectory]) -> AdminContext:
    return AdminContext(store_link, teams)


ADMIN_DEPENDENCIES = {"admin": Provide(_provide_admin, sync_to_thread=False)}
