"""Who may call which admin route: one table, route x caller kind, and the one guard that reads it.

Caller kinds, each relative to the team a request is about (read once, from the path, the query,
the body, or the team of the key the request names):

=====================  ==============================================================
master key             every route
team admin             rows marked ``TEAM``, for its own team only (a key whose user is an
                       admin member of the key's team: ``Caller.team_admin``)
admin of another team  403
team member (user)     403
plain key              403
no key, bad key        401
=====================  ==============================================================

A route with no row is refused to everyone but the master key, and ``tests/app/api/test_access.py``
fails for a route the app serves that has no row here nor in ``OWN_AUTH``: a new admin route cannot
ship open by forgetting this file. Rows for routes not served yet (the delivery ledger and replay)
stand ready; they apply as soon as the route exists.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.types import Guard

from app.api.admin.context import AdminCheck
from app.calls.caller import Caller
from app.errors import InvalidRequest, PermissionDenied
from app.gateway.validation import check_json_depth
from app.teams.secrets import hash_key

log = logging.getLogger(__name__)
KEY_HEADER = "x-spangate-key"  # a key to look up, kept out of the URL (and so out of access logs)


class TeamFrom(Enum):
    """Where a team-scoped route names the team it acts on."""

    PATH = "path"  # /team/{team_id}/...
    QUERY = "query"  # ?team_id=
    BODY = "body"  # {"team_id": ...}
    KEY = "key"  # the teams of every key named by ?key=, the x-spangate-key header and {"key": ...}
    KEYS = "keys"  # the teams of every key in {"keys": [...]}


@dataclass(frozen=True, slots=True)
class Rule:
    """``team_from`` None: the master key only. Else a team admin may too, for its own team;
    ``own_user``: and a body ``user_id``, when given, must be the team admin's own; ``master_fields``:
    body fields only the master key may set (non-null)."""

    team_from: TeamFrom | None = None
    own_user: bool = False
    master_fields: tuple[str, ...] = ()


MASTER = Rule()
PATH, QUERY, BODY = Rule(TeamFrom.PATH), Rule(TeamFrom.QUERY), Rule(TeamFrom.BODY)
KEY, KEYS = Rule(TeamFrom.KEY), Rule(TeamFrom.KEYS)
BODY_OWN_USER = Rule(TeamFrom.BODY, own_user=True)
# A team admin may change its own team's keys (alias, models, metadata, expiry, budgets and rate
# limits); moving a key to another team is the operator's.
KEY_NOT_TEAM = Rule(TeamFrom.KEY, master_fields=("team_id",))

# (method, Litestar's path format) -> who may call it. Reads as the matrix: MASTER rows are the
# master key's alone; the others a team admin's too, on the team named where the rule says.
ACCESS: Mapping[tuple[str, str], Rule] = {
    ("POST", "/team/new"): MASTER,
    ("GET", "/team/info"): QUERY,
    ("GET", "/team/list"): MASTER,
    ("POST", "/team/update"): MASTER,
    ("POST", "/team/delete"): MASTER,
    ("POST", "/team/member_add"): MASTER,
    ("POST", "/team/member_delete"): MASTER,
    ("POST", "/user/new"): MASTER,
    ("GET", "/user/info"): MASTER,
    ("POST", "/key/generate"): BODY_OWN_USER,  # a key for another user would carry that user's rights
    ("POST", "/key/update"): KEY_NOT_TEAM,
    ("GET", "/key/list"): QUERY,
    ("GET", "/spend/logs"): QUERY,  # a team admin names its own team_id, and sees that team's calls only
    ("GET", "/key/info"): KEY,
    ("POST", "/key/info"): KEY,
    ("POST", "/key/delete"): KEYS,
    ("GET", "/team/{team_id}/callback"): PATH,
    ("POST", "/team/{team_id}/callback"): PATH,
    ("DELETE", "/team/{team_id}/callback/{callback_name}"): PATH,
    ("POST", "/team/{team_id}/callback/test"): PATH,
    ("GET", "/team/{team_id}/callback/fields"): PATH,
    ("POST", "/team/{team_id}/disable_logging"): PATH,
    ("POST", "/team/{team_id}/enable_logging"): PATH,
    ("GET", "/team/{team_id}/deliveries"): PATH,
    ("GET", "/team/{team_id}/deliveries/history"): PATH,
    ("GET", "/team/{team_id}/callback/{callback_name}/dead_letters"): PATH,
    ("POST", "/team/{team_id}/callback/{callback_name}/replay"): PATH,
    ("GET", "/health/destinations"): MASTER,
    ("GET", "/health/destinations/history"): MASTER,
    ("GET", "/health/destinations/{name}/dead_letters"): MASTER,
    ("POST", "/health/destinations/{name}/replay"): MASTER,
}

# Routes outside the admin API, each answering anyone or checking its caller itself: the LLM model
# lists (scoped to the caller's key), probes, the model check, /metrics (its scrape token), the schema
# and the admin page.
OWN_AUTH: frozenset[str] = frozenset({
    "/v1/models", "/models", "/health/liveliness", "/health/liveness", "/health/readiness", "/health", "/metrics"})
OWN_AUTH_PREFIXES = ("/schema", "/ui")  # /ui: the admin page's shell and assets hold no data; it calls these routes


def access_guard(check: AdminCheck) -> Guard:
    """The admin API's one guard; a key's team and admin flag come from the key index, as on the request path.

    Runs before Litestar parses the body and query: a caller without the rights gets 401/403, never
    the route's validation details. Async, though it waits only for a body it must read: Litestar
    runs a sync guard in a worker thread. A closure, not a bound method: Litestar deep-copies a
    Router it registers, and a function is copied as itself."""
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        caller = check.caller(connection)
        if caller.is_admin:
            return
        rule = rule_for(connection.method, connection.scope["path_template"])
        if rule.team_from is None or not caller.team_admin:
            raise PermissionDenied(_refusal(rule), code="admin_only")
        teams = await teams_named(connection, rule.team_from, check.keys)
        if not teams or any(team != caller.team_id for team in teams):
            raise PermissionDenied(f"this key administers team {caller.team_id!r} only; the request is about "
                                   "another team, or names none", code="other_team")
        if rule.own_user:
            await _own_user_only(connection, caller)
        if rule.master_fields:
            await _no_master_fields(connection, rule.master_fields)

    return guard


async def _own_user_only(connection: ASGIConnection[Any, Any, Any, Any], caller: Caller) -> None:
    """A team admin's new key is for no user or for itself. A key for another user id (the team's
    other admin, say) would keep that user's admin rights after the caller is removed from the
    team, and /key/generate would create an unknown user; both are the master key's to do."""
    user_id = (await _body(connection)).get("user_id")
    if user_id is not None and user_id != caller.user_id:
        raise PermissionDenied("a team admin makes keys for itself only: omit user_id, or give your own",
                               param="user_id", code="other_user")


async def _no_master_fields(connection: ASGIConnection[Any, Any, Any, Any], names: tuple[str, ...]) -> None:
    body = await _body(connection)
    named = [name for name in names if body.get(name) is not None]
    if named:
        raise PermissionDenied(f"only the master key can set {', '.join(named)} here", param=named[0],
                               code="admin_only")


def rule_for(method: str, path_template: str) -> Rule:
    rule = ACCESS.get((method, path_template))
    if rule is None:  # fail closed, and say so: the table is missing a row
        log.error("admin route %s %s has no row in the access table; only the master key may call it",
                  method, path_template)
        return MASTER
    return rule


def _refusal(rule: Rule) -> str:
    if rule.team_from is None:
        return "only the master key can use this route"
    return "only the master key or a key of an admin member of the team can use this route"


async def teams_named(connection: ASGIConnection[Any, Any, Any, Any], source: TeamFrom,
                      keys: Mapping[str, Caller]) -> list[str | None]:
    """The teams a request acts on, as its handler will read them; a key the index does not know
    counts as no team (so it is refused, and a team admin learns nothing of other teams' keys)."""
    if source is TeamFrom.PATH:
        return [connection.path_params.get("team_id")]
    if source is TeamFrom.QUERY:
        return _once(connection.query_params.getall("team_id", []), "team_id") or [None]
    body = await _body(connection)
    if source is TeamFrom.BODY:
        return [_text(body.get("team_id"))]
    if source is TeamFrom.KEY:
        # Every key named anywhere, not the first found: POST /key/info reads the body alone, GET
        # the query or the header, so a key in any place may be the one answered.
        named = [*_once(connection.query_params.getall("key", []), "key"),
                 *_once(connection.headers.getall(KEY_HEADER, []), KEY_HEADER),
                 *([body["key"]] if "key" in body else [])]
        return [_team_of(_text(k), keys) for k in named]
    listed = body.get("keys")
    return [_team_of(_text(k), keys) for k in listed] if isinstance(listed, list) else []


def _once(values: list[str], name: str) -> list[str]:
    """A repeated query parameter or header is refused: the guard must judge the one value the
    handler reads, and MultiDict.get (the first) and Litestar's handler kwargs (the last) disagree."""
    if len(values) > 1:
        raise InvalidRequest(f"{name} is given {len(values)} times; give it once", param=name,
                             code="duplicate_parameter")
    return values


async def _body(connection: ASGIConnection[Any, Any, Any, Any]) -> Mapping[str, Any]:
    """The JSON body, decoded as the handler's own decoder will (msgspec: a repeated field's last
    value wins in both). Cached by Litestar, so the handler reads the same bytes."""
    if not isinstance(connection, Request) or connection.method not in ("POST", "PUT", "PATCH", "DELETE"):
        return {}
    raw = await connection.body()
    if not raw:
        return {}
    check_json_depth(raw)
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise InvalidRequest("the request body is not valid JSON", code="invalid_json") from None
    return body if isinstance(body, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _team_of(key: str | None, keys: Mapping[str, Caller]) -> str | None:
    if not key:
        return None
    found = keys.get(as_hash(key))
    return found.team_id if found is not None else None


def as_hash(key: str) -> str:
    """Admin calls may name a key by its plaintext or by the hash /key/generate returned as token."""
    return key if re.fullmatch(r"[0-9a-f]{64}", key) else hash_key(key)


def admin_paths(routes: Sequence[Any]) -> list[tuple[str, str]]:
    """(method, path format) of every route outside ``OWN_AUTH``: each must have a row in ``ACCESS``."""
    return sorted((method, route.path_format) for route in routes for method in route.methods
                  if method not in ("OPTIONS", "HEAD") and route.path_format not in OWN_AUTH
                  and not route.path_format.startswith(OWN_AUTH_PREFIXES))
