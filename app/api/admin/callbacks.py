"""``/team/{team_id}/...``: a team's logging callbacks (LiteLLM's team-based logging routes), the
switch that silences a team, and a test send through the team's destinations."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from app.api.admin.callback_entries import CallbackSet, masked_vars, prepare_callback
from app.api.admin.context import Admin, AdminContext, Rules
from app.api.admin.teams import team_not_found
from app.calls.attributes import span_name
from app.errors import NotFound
from app.store import AlreadyExists, CallbackType
from app.store import NotFound as StoreNotFound
from app.teams.directory import TeamDirectory
from app.teams.routing import CALLBACK_TYPES, DestinationSpec, build_context
from app.teams.state import secret_context
from contracts import semconv as sc
from contracts.failures import ExportFailure
from exporters.content_policy import MessageLogging
from exporters.registry import BuildContext, DestinationRegistry

_SUCCESS = (CallbackType.SUCCESS, CallbackType.SUCCESS_AND_FAILURE)
_FAILURE = (CallbackType.FAILURE, CallbackType.SUCCESS_AND_FAILURE)


class TeamCallbackController(Controller):
    path = "/team/{team_id:str}"
    tags = ["team management"]

    @post("/callback", status_code=200)
    async def callback_set(self, admin: Admin, rules: Rules, team_id: FromPath[str],
                           data: JSONBody[CallbackSet]) -> dict[str, Any]:
        await admin.known_team(team_id)
        write = await prepare_callback(rules, data, await admin.store.list_callbacks(team_id),
                                       secret_context(team_id, data.callback_name, data.callback_type))
        replaced = await admin.store.set_callback(team_id, write.callback_name, write.callback_type,
                                                  write.vars_ciphertext, write.secret_var_names, write.plain_vars)
        await admin.refresh()
        verb = "replaced the existing" if replaced else "added a"
        return {"status": "success", "message": f"{verb} {data.callback_name} {data.callback_type} callback",
                "replaced": replaced, "data": await _callbacks_json(admin, team_id)}

    @get("/callback")
    async def callback_get(self, admin: Admin, team_id: FromPath[str]) -> dict[str, Any]:
        await admin.known_team(team_id)
        return {"status": "success", "data": await _callbacks_json(admin, team_id)}

    @get("/callback/fields")
    async def callback_fields(self, admin: Admin, rules: Rules, team_id: FromPath[str]) -> dict[str, Any]:
        """The destinations this team may add and each one's vars (required, secret), in form order; read
        from the destination registry, so a form drawn from it asks for exactly what POST accepts."""
        await admin.known_team(team_id)
        return {"team_id": team_id, "callback_types": [str(t) for t in CALLBACK_TYPES],
                "message_logging": [str(m) for m in MessageLogging], "destinations": destination_fields(rules.registry)}

    @delete("/callback/{callback_name:str}", status_code=200)
    async def callback_delete(self, admin: Admin, team_id: FromPath[str],
                              callback_name: FromPath[str]) -> dict[str, Any]:
        await admin.known_team(team_id)
        removed = await admin.store.delete_callback(team_id, callback_name)
        if not removed:
            raise NotFound(f"team {team_id!r} has no {callback_name!r} callback", param="callback_name",
                           code="callback_not_found")
        await admin.refresh()
        return {"status": "success", "removed": removed, "data": await _callbacks_json(admin, team_id)}

    @post("/disable_logging", status_code=200)
    async def disable_logging(self, admin: Admin, team_id: FromPath[str]) -> dict[str, Any]:
        return await _set_logging(admin, team_id, True)

    @post("/enable_logging", status_code=200)
    async def enable_logging(self, admin: Admin, team_id: FromPath[str]) -> dict[str, Any]:
        return await _set_logging(admin, team_id, False)

    @post("/callback/test", status_code=200)
    async def callback_test(self, admin: Admin, tester: NamedDependency[DestinationTester],
                            team_id: FromPath[str]) -> dict[str, Any]:
        """Send one synthetic span through each of the team's destinations, now, and say how each went."""
        await admin.known_team(team_id)
        specs = tester.specs(team_id)
        if not specs:
            raise NotFound(f"team {team_id!r} has no callbacks of its own to test", param="team_id",
                           code="callback_not_found")
        results = await tester.send(team_id, specs)
        ok = all(r["status"] == "success" for r in results)
        return {"status": "success" if ok else "failure", "team_id": team_id, "results": results}


class DestinationTester:
    """What ``/team/{id}/callback/test`` needs: a team's destinations, built as the router builds them
    (``build_ctx``), and the resource the gateway's spans carry."""

    __slots__ = ("_build_ctx", "_registry", "_resource", "_teams")

    def __init__(self, teams: TeamDirectory, registry: DestinationRegistry, resource: Resource,
                 build_ctx: BuildContext) -> None:
        self._teams, self._registry = teams, registry
        self._resource, self._build_ctx = resource, build_ctx

    def specs(self, team_id: str) -> list[DestinationSpec]:
        return self._teams.destination_specs(self._registry).get(team_id, [])

    async def send(self, team_id: str, specs: list[DestinationSpec]) -> list[dict[str, Any]]:
        span = synthetic_span(self._resource, team_id)
        return await asyncio.gather(*(asyncio.to_thread(try_destination, spec, span, self._build_ctx)
                                      for spec in specs))


async def _set_logging(admin: AdminContext, team_id: str, disabled: bool) -> dict[str, Any]:
    if await admin.known_team(team_id) is None:  # a config-only team: give it a row to hold the flag
        with contextlib.suppress(AlreadyExists):  # another instance did it meanwhile
            await admin.store.create_team(team_id, None, [], {})
    try:
        team = await admin.store.set_logging_disabled(team_id, disabled)
    except StoreNotFound:
        raise team_not_found(team_id) from None
    await admin.refresh()
    return {"status": "success", "team_id": team.team_id, "logging_disabled": team.logging_disabled}


async def _callbacks_json(admin: AdminContext, team_id: str) -> dict[str, Any]:
    records = await admin.store.list_callbacks(team_id)
    success = [r.callback_name for r in records if r.callback_type in _SUCCESS]
    failure = [r.callback_name for r in records if r.callback_type in _FAILURE]
    shown: dict[str, Any] = {}
    for record in records:
        shown.update(masked_vars(record))
    return {"team_id": team_id, "success_callbacks": list(dict.fromkeys(success)),
            "failure_callbacks": list(dict.fromkeys(failure)), "callback_vars": shown}


def destination_fields(registry: DestinationRegistry) -> list[dict[str, Any]]:
    kinds = {registry.get(name).name: registry.get(name) for name in registry.team_names}  # aliases once
    return [{"callback_name": name, "aliases": list(kind.aliases),
             "vars": [{"name": var, "required": var in kind.required_vars, "secret": var in kind.secret_vars}
                      for var in kind.team_vars]} for name, kind in sorted(kinds.items())]


def synthetic_span(resource: Resource, team_id: str) -> ReadableSpan:
    """A finished chat span that never enters the router, so only the tested destinations see it."""
    ids = RandomIdGenerator()
    context = SpanContext(ids.generate_trace_id(), ids.generate_span_id(), is_remote=False,
                          trace_flags=TraceFlags(TraceFlags.SAMPLED))
    attrs = {sc.OPERATION_NAME: sc.OP_CHAT, sc.REQUEST_MODEL: "spangate-callback-test", sc.TEAM_ID: team_id,
             sc.SYNTHETIC: True, sc.USAGE_INPUT_TOKENS: 1, sc.USAGE_OUTPUT_TOKENS: 1}
    now = time.time_ns()
    return ReadableSpan(name=span_name(sc.OP_CHAT, "spangate-callback-test"), context=context,
                        resource=resource, attributes=attrs, kind=SpanKind.CLIENT,
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
