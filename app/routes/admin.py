"""The admin API LiteLLM users know: teams, virtual keys and per-team and per-key logging callbacks.

Only the master key administers. Secrets never leave: keys are shown once at generation, callback
secrets come back as a fixed mask, and a masked value posted back is refused rather than stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, Router, delete, get, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from app.auth import Caller, bearer_token
from app.errors import AuthenticationFailed, InvalidRequest, NotFound, PermissionDenied
from app.routes.admin_fields import refuse_unimplemented
from app.routes.callback_entries import CallbackSet, masked_vars, prepare_callback
from app.routes.key_logging import key_json, split_key_metadata
from app.routes.team_logging import split_team_metadata, team_json
from app.routing import DestinationSpec, build_context
from app.secrets import MASK as MASK  # what GET shows for a secret; tests import it from here
from app.secrets import hash_key, key_display_prefix, new_virtual_key
from app.spans import span_name
from app.store import AlreadyExists, StoreUnavailable, TeamRecord
from app.store import NotFound as StoreNotFound
from app.teamstate import secret_context, utcnow
from app.validation import check_json_depth
from contracts import semconv as sc
from contracts.failures import ExportFailure
from exporters.registry import BuildContext

if TYPE_CHECKING:
    from app.server import Gateway
    from app.store import Store

KEY_HEADER = "x-spangate-key"  # a key to look up, kept out of the URL (and so out of access logs)
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_DURATION = timedelta(days=36500)
MAX_PAGE_SIZE = 100


class TeamNew(msgspec.Struct):
    team_id: str | None = None
    team_alias: str | None = None
    models: list[str] = msgspec.field(default_factory=list)
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class TeamUpdate(msgspec.Struct):
    team_id: str
    team_alias: str | None = None
    models: list[str] | None = None
    metadata: dict[str, Any] | None = None


class TeamDelete(msgspec.Struct):
    team_ids: list[str]


class KeyGenerate(msgspec.Struct):
    team_id: str | None = None
    key_alias: str | None = None
    models: list[str] = msgspec.field(default_factory=list)
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    duration: str | None = None


class KeyUpdate(msgspec.Struct):
    key: str  # the key, or its hash (``token``) as /key/generate and /key/list show it
    key_alias: str | None = None
    team_id: str | None = None
    models: list[str] | None = None
    metadata: dict[str, Any] | None = None  # replaces the metadata; its ``logging``, when given, the entries
    duration: str | None = None  # a new expiry, counted from now


class KeyInfo(msgspec.Struct):
    key: str


class KeyDelete(msgspec.Struct):
    keys: list[str]


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise InvalidRequest(f"duration {text[:40]!r} is not like '30d', '12h', '15m' or '45s'", param="duration",
                             code="invalid_value")
    digits = match.group(1).lstrip("0") or "0"
    amount = int(digits) if len(digits) <= 12 else None  # int() refuses over 4300 digits: never try
    # Checked here: timedelta() and the expiry date overflow (a 500) long before an int does.
    if amount is None or amount * _UNIT_SECONDS[match.group(2)] > _MAX_DURATION.total_seconds():
        raise InvalidRequest(f"duration {text[:40]!r} is longer than {_MAX_DURATION.days}d (100 years); omit duration "
                             "for a key that never expires", param="duration", code="invalid_value")
    return timedelta(**{_UNITS[match.group(2)]: amount})


def require_admin(gateway: Gateway, request: ASGIConnection[Any, Any, Any, Any]) -> Caller:
    if gateway.config.master_key is None:
        raise PermissionDenied("the admin API is disabled: set general_settings.master_key")
    headers = request.headers
    token = bearer_token(headers)
    if token is None:
        raise AuthenticationFailed("missing API key: send 'Authorization: Bearer <master key>'")
    caller = gateway.auth.authenticate(token)
    if not caller.is_admin:
        raise PermissionDenied("only the master key can use admin routes", code="admin_only")
    return caller


def admin_routes(gateway: Gateway) -> list[Router]:
    def store() -> Store:
        return gateway.extras["store"]

    async def refresh() -> None:
        # This instance sees its own write at once. The write is committed before this runs, so a
        # store gone in between must not turn it into a 503; the watcher's next poll applies it.
        with contextlib.suppress(StoreUnavailable):
            await gateway.extras["watcher"].refresh()

    def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        # Guards run before Litestar parses the body and query: without it a caller lacking the
        # master key got 400 with the admin API's validation details instead of 401/403.
        require_admin(gateway, connection)

    async def known_team(team_id: str) -> TeamRecord | None:
        team = await store().get_team(team_id)
        if team is None and team_id not in gateway.teams.config_team_ids:
            raise NotFound(f"team {team_id!r} does not exist", param="team_id", code="team_not_found")
        return team

    @post("/team/new", status_code=200, tags=["team management"], opt={"body": TeamNew})
    async def team_new(data: JSONBody[TeamNew]) -> dict[str, Any]:
        if data.team_id is not None and not data.team_id.strip():
            raise InvalidRequest("team_id must not be empty", param="team_id")
        team_id = data.team_id or str(uuid.uuid4())  # chosen here: the callbacks' secrets are bound to it
        # Checked in full before anything is written: a typo in metadata.logging saves no team at all.
        metadata, entries = await split_team_metadata(gateway, team_id, data.metadata, ())
        try:
            team = await store().create_team(team_id, data.team_alias, data.models, metadata, entries or ())
        except AlreadyExists:
            raise InvalidRequest(f"team {data.team_id!r} already exists", param="team_id",
                                 code="team_exists", status=409) from None
        await refresh()
        return team_json(team, entries or ())

    @get("/team/info", tags=["team management"])
    async def team_info(team_id: FromQuery[str]) -> dict[str, Any]:
        team = await known_team(team_id)
        snapshot = gateway.extras["watcher"].snapshot
        keys = [key_json(k, snapshot.key_callbacks.get(k.token_hash, ())) for k in snapshot.keys.values()
                if k.team_id == team_id] if snapshot else []
        info = team_json(team, await store().list_callbacks(team_id)) if team else {"team_id": team_id,
                                                                                   "source": "config"}
        return {"team_id": team_id, "team_info": info, "keys": keys}

    @get("/team/list", tags=["team management"])
    async def team_list() -> list[dict[str, Any]]:
        teams = await store().list_teams()
        entries = await store().list_team_callbacks(t.team_id for t in teams)
        return [team_json(t, entries.get(t.team_id, ())) for t in teams]

    @post("/team/update", status_code=200, tags=["team management"], opt={"body": TeamUpdate})
    async def team_update(data: JSONBody[TeamUpdate]) -> dict[str, Any]:
        missing = NotFound(f"team {data.team_id!r} does not exist", param="team_id", code="team_not_found")
        if await store().get_team(data.team_id) is None:  # a 404 before metadata.logging's 400s
            raise missing
        fields = {k: v for k, v in (("team_alias", data.team_alias), ("models", data.models)) if v is not None}
        stored = await store().list_callbacks(data.team_id)
        entries = None
        if data.metadata is not None:
            fields["metadata"], entries = await split_team_metadata(gateway, data.team_id, data.metadata, stored)
        try:
            team = await store().update_team(data.team_id, callbacks=entries, **fields)
        except StoreNotFound:  # deleted meanwhile
            raise missing from None
        await refresh()
        return team_json(team, stored if entries is None else entries)

    @post("/team/delete", status_code=200, tags=["team management"])
    async def team_delete(data: JSONBody[TeamDelete]) -> dict[str, Any]:
        deleted = await store().delete_teams(data.team_ids)
        missing = [t for t in data.team_ids if t not in deleted]
        if missing and not deleted:
            raise NotFound(f"no such team: {', '.join(missing)}", param="team_ids", code="team_not_found")
        await refresh()
        return {"deleted_teams": deleted, "not_found": missing}

    @post("/key/generate", status_code=200, tags=["key management"], opt={"body": KeyGenerate})
    async def key_generate(data: JSONBody[KeyGenerate]) -> dict[str, Any]:
        if data.team_id is not None:
            await known_team(data.team_id)
        expires = utcnow() + parse_duration(data.duration) if data.duration else None
        plaintext = new_virtual_key()
        token = hash_key(plaintext)
        # Checked in full before anything is written: a typo in metadata.logging saves no key at all.
        metadata, entries = await split_key_metadata(gateway, token, data.metadata, ())
        record = await store().create_key(token, key_display_prefix(plaintext), data.team_id, data.key_alias,
                                          data.models, metadata, expires, callbacks=entries or ())
        await refresh()
        return {"key": plaintext, **key_json(record, entries or ())}

    @post("/key/update", status_code=200, tags=["key management"], opt={"body": KeyUpdate})
    async def key_update(data: JSONBody[KeyUpdate]) -> dict[str, Any]:
        token = _as_hash(data.key)
        if await store().get_key(token) is None:
            raise NotFound("no such key", param="key", code="key_not_found")
        if data.team_id is not None:
            await known_team(data.team_id)
        fields = {k: v for k, v in (("key_alias", data.key_alias), ("team_id", data.team_id),
                                    ("models", data.models)) if v is not None}
        if data.duration:
            fields["expires_at"] = utcnow() + parse_duration(data.duration)
        stored = (await store().list_key_callbacks([token])).get(token, ())
        entries = None
        if data.metadata is not None:
            fields["metadata"], entries = await split_key_metadata(gateway, token, data.metadata, stored)
        try:
            record = await store().update_key(token, callbacks=entries, **fields)
        except StoreNotFound:  # deleted meanwhile
            raise NotFound("no such key", param="key", code="key_not_found") from None
        await refresh()
        return key_json(record, stored if entries is None else entries)

    @get("/key/list", tags=["key management"])
    async def key_list(page: FromQuery[int] = 1, size: FromQuery[int] = 10,
                       team_id: FromQuery[str | None] = None) -> dict[str, Any]:
        """Every key's hash, alias, team and metadata (logging secrets masked), a page at a time."""
        if page < 1:
            raise InvalidRequest("page must be 1 or more", param="page", code="invalid_value")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidRequest(f"size must be from 1 to {MAX_PAGE_SIZE}", param="size", code="invalid_value")
        records, total = await store().list_keys((page - 1) * size, size, team_id)
        entries = await store().list_key_callbacks(r.token_hash for r in records)
        return {"keys": [key_json(r, entries.get(r.token_hash, ())) for r in records], "total_count": total,
                "current_page": page, "total_pages": -(-total // size)}

    async def key_lookup(key: str | None) -> dict[str, Any]:
        if not key:
            raise InvalidRequest(f"give the key in a JSON body {{\"key\": ...}} (POST) or the {KEY_HEADER} header",
                                 param="key", code="missing_required_parameter")
        token = _as_hash(key)
        record = await store().get_key(token)
        if record is None:
            raise NotFound("no such key", param="key", code="key_not_found")
        entries = (await store().list_key_callbacks([token])).get(token, ())
        return {"info": key_json(record, entries)}

    @get("/key/info", tags=["key management"])
    async def key_info(key: FromQuery[str | None] = None,
                       key_header: Annotated[str | None, HeaderParameter(name=KEY_HEADER)] = None) -> dict[str, Any]:
        """LiteLLM's ``?key=`` form still works (the access log never shows it); prefer the header or POST."""
        return await key_lookup(key or key_header)

    @post("/key/info", status_code=200, tags=["key management"])
    async def key_info_post(data: JSONBody[KeyInfo]) -> dict[str, Any]:
        return await key_lookup(data.key)

    @post("/key/delete", status_code=200, tags=["key management"])
    async def key_delete(data: JSONBody[KeyDelete]) -> dict[str, Any]:
        hashes = [_as_hash(k) for k in data.keys]
        deleted = await store().delete_keys(hashes)
        if not deleted:
            raise NotFound("none of the keys exist", param="keys", code="key_not_found")
        await refresh()
        return {"deleted_keys": deleted}

    @post("/team/{team_id:str}/callback", status_code=200, tags=["team management"])
    async def callback_set(team_id: FromPath[str],
                           data: JSONBody[CallbackSet]) -> dict[str, Any]:
        await known_team(team_id)
        replaced = await _store_callback(gateway, team_id, data)
        await refresh()
        verb = "replaced the existing" if replaced else "added a"
        return {"status": "success", "message": f"{verb} {data.callback_name} {data.callback_type} callback",
                "replaced": replaced, "data": await _callbacks_json(gateway, team_id)}

    @get("/team/{team_id:str}/callback", tags=["team management"])
    async def callback_get(team_id: FromPath[str]) -> dict[str, Any]:
        await known_team(team_id)
        return {"status": "success", "data": await _callbacks_json(gateway, team_id)}

    @delete("/team/{team_id:str}/callback/{callback_name:str}", status_code=200, tags=["team management"])
    async def callback_delete(team_id: FromPath[str],
                              callback_name: FromPath[str]) -> dict[str, Any]:
        await known_team(team_id)
        removed = await store().delete_callback(team_id, callback_name)
        if not removed:
            raise NotFound(f"team {team_id!r} has no {callback_name!r} callback", param="callback_name",
                           code="callback_not_found")
        await refresh()
        return {"status": "success", "removed": removed, "data": await _callbacks_json(gateway, team_id)}

    async def set_logging(team_id: str, disabled: bool) -> dict[str, Any]:
        if await known_team(team_id) is None:  # a config-only team: give it a row to hold the flag
            with contextlib.suppress(AlreadyExists):  # another instance did it meanwhile
                await store().create_team(team_id, None, [], {})
        try:
            team = await store().set_logging_disabled(team_id, disabled)
        except StoreNotFound:
            raise NotFound(f"team {team_id!r} does not exist", param="team_id", code="team_not_found") from None
        await refresh()
        return {"status": "success", "team_id": team.team_id, "logging_disabled": team.logging_disabled}

    @post("/team/{team_id:str}/disable_logging", status_code=200, tags=["team management"])
    async def disable_logging(team_id: FromPath[str]) -> dict[str, Any]:
        return await set_logging(team_id, True)

    @post("/team/{team_id:str}/enable_logging", status_code=200, tags=["team management"])
    async def enable_logging(team_id: FromPath[str]) -> dict[str, Any]:
        return await set_logging(team_id, False)

    @post("/team/{team_id:str}/callback/test", status_code=200, tags=["team management"])
    async def callback_test(team_id: FromPath[str]) -> dict[str, Any]:
        """Send one synthetic span through each of the team's destinations, now, and say how each went."""
        await known_team(team_id)
        specs = gateway.teams.destination_specs(gateway.registry).get(team_id, [])
        if not specs:
            raise NotFound(f"team {team_id!r} has no callbacks of its own to test", param="team_id",
                           code="callback_not_found")
        span = synthetic_span(gateway, team_id)
        results = await asyncio.gather(*(asyncio.to_thread(try_destination, spec, span, gateway.build_ctx)
                                         for spec in specs))
        ok = all(r["status"] == "success" for r in results)
        return {"status": "success" if ok else "failure", "team_id": team_id, "results": results}

    # One guard for the whole admin API, checked before Litestar parses a body or query; then the
    # body's depth, before msgspec decodes it recursively (990 levels was a RecursionError 500), and
    # LiteLLM fields msgspec would otherwise drop without a word.
    return [Router(path="/", guards=[admin_guard], before_request=_check_body, route_handlers=[
        team_new, team_info, team_list, team_update, team_delete, key_generate, key_update, key_list, key_info,
        key_info_post, key_delete, callback_set, callback_get, callback_delete, disable_logging, enable_logging,
        callback_test])]


async def _check_body(request: Request[Any, Any, Any]) -> None:
    if request.method in ("POST", "PUT", "PATCH"):
        raw = await request.body()
        check_json_depth(raw)
        struct = request.route_handler.opt.get("body")
        if struct is not None:
            refuse_unimplemented(raw, struct)


def synthetic_span(gateway: Gateway, team_id: str) -> ReadableSpan:
    """A finished chat span that never enters the router, so only the tested destinations see it."""
    ids = RandomIdGenerator()
    context = SpanContext(ids.generate_trace_id(), ids.generate_span_id(), is_remote=False,
                          trace_flags=TraceFlags(TraceFlags.SAMPLED))
    attrs = {sc.OPERATION_NAME: sc.OP_CHAT, sc.REQUEST_MODEL: "spangate-callback-test", sc.TEAM_ID: team_id,
             sc.SYNTHETIC: True, sc.USAGE_INPUT_TOKENS: 1, sc.USAGE_OUTPUT_TOKENS: 1}
    now = time.time_ns()
    return ReadableSpan(name=span_name(sc.OP_CHAT, "spangate-callback-test"), context=context,
                        resource=gateway.tracer_provider.resource, attributes=attrs, kind=SpanKind.CLIENT,
                        start_time=now - 1_000_000, end_time=now)


def try_destination(spec: DestinationSpec, span: ReadableSpan, ctx: BuildContext) -> dict[str, Any]:
    exporter = spec.kind.build(spec.config, build_context(spec, ctx))
    try:
        result = exporter.export([span])
    finally:
        exporter.shutdown()
    failure: ExportFailure | None = getattr(exporter, "last_failure", None)
    ok = result is SpanExportResult.SUCCESS
    return {"callback_name": spec.name, "callback_type": spec.callback_type, "status": "success" if ok else "failure",
            "http_status": None if failure is None else failure.status,
            "detail": None if ok else (failure.reason if failure and failure.reason else "export failed")}


def _as_hash(key: str) -> str:
    """Admin calls may name a key by its plaintext or by the hash /key/generate returned as token."""
    return key if re.fullmatch(r"[0-9a-f]{64}", key) else hash_key(key)


async def _store_callback(gateway: Gateway, team_id: str, data: CallbackSet) -> bool:
    store: Store = gateway.extras["store"]
    write = await prepare_callback(gateway, data, await store.list_callbacks(team_id),
                                   secret_context(team_id, data.callback_name, data.callback_type))
    return await store.set_callback(team_id, write.callback_name, write.callback_type, write.vars_ciphertext,
                                    write.secret_var_names, write.plain_vars)


async def _callbacks_json(gateway: Gateway, team_id: str) -> dict[str, Any]:
    records = await gateway.extras["store"].list_callbacks(team_id)
    success = [r.callback_name for r in records if r.callback_type.value in ("success", "success_and_failure")]
    failure = [r.callback_name for r in records if r.callback_type.value in ("failure", "success_and_failure")]
    shown: dict[str, Any] = {}
    for record in records:
        shown.update(masked_vars(record))
    return {"team_id": team_id, "success_callbacks": list(dict.fromkeys(success)),
            "failure_callbacks": list(dict.fromkeys(failure)), "callback_vars": shown}

