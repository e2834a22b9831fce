"""A team's delivery ledger, its dead letters and their replay (``/team/{team_id}/deliveries``,
``/team/{team_id}/callback/{callback_name}/dead_letters`` and ``.../replay``).

Read from the delivery layer's counters (this instance's, since it started) and its dead-letter
store: no body of a destination's answer, no secret and no message content is ever shown. The
spool is SQLite behind a lock the export threads share, so every read runs in a worker thread.
Guarded as the other ``/team/{id}/...`` routes are (the admin router's guard).
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from app.api.admin.context import Admin, AdminContext
from app.api.history import DeliveryHistory
from app.errors import InvalidRequest, NotFound
from app.gateway.validation import check_json_depth
from app.teams.directory import TeamDirectory
from processors.delivery import DeadLetter, DeliveryManager, DestinationHealth, Selection

_REASON_CHARS = 200
MAX_LETTERS = 1000
_SELECTION_FIELDS = ("since", "until", "span_ids")


class TeamDeliveryController(Controller):
    path = "/team/{team_id:str}"
    tags = ["team management"]

    @get("/deliveries")
    async def deliveries(self, admin: Admin, delivery: NamedDependency[DeliveryManager],
                         teams: NamedDependency[TeamDirectory], team_id: FromPath[str]) -> dict[str, Any]:
        """Per destination of the team: state, counts, dead letters held, last success and error, lag."""
        await admin.known_team(team_id)
        paused = team_id in teams.logging_disabled()
        rows = await asyncio.to_thread(ledger, delivery, team_id, paused)
        return {"team_id": team_id, "destinations": rows}

    @get("/deliveries/history")
    async def delivery_history(self, admin: Admin, delivery: NamedDependency[DeliveryManager],
                               history: NamedDependency[DeliveryHistory], team_id: FromPath[str]) -> dict[str, Any]:
        """The last hour of each of the team's destinations, a sample every ``interval_seconds``: delivered,
        failed and dead-lettered (counts since start) and lag p50, for the admin page's charts."""
        await admin.known_team(team_id)
        found = await asyncio.to_thread(team_destinations, delivery, team_id)
        return {"team_id": team_id, "interval_seconds": history.interval,
                "destinations": [{"callback_name": h.name, "callback_type": callback_type(h),
                                  "samples": history.samples(h.key)} for h in found]}

    @get("/callback/{callback_name:str}/dead_letters")
    async def dead_letters(self, admin: Admin, delivery: NamedDependency[DeliveryManager], team_id: FromPath[str],
                           callback_name: FromPath[str], limit: FromQuery[int] = 100) -> dict[str, Any]:
        """The newest dead letters of one callback: ids, times, model and reason; never content."""
        if not 1 <= limit <= MAX_LETTERS:
            raise InvalidRequest(f"limit must be between 1 and {MAX_LETTERS}", param="limit", code="invalid_value")
        keys = await _callback_keys(admin, delivery, team_id, callback_name)
        letters = await asyncio.to_thread(_letters, delivery, keys, limit)
        return {"team_id": team_id, "callback_name": callback_name, "dead_letters": letters}

    @post("/callback/{callback_name:str}/replay", status_code=200)
    async def replay(self, request: Request[Any, Any, Any], admin: Admin, delivery: NamedDependency[DeliveryManager],
                     team_id: FromPath[str], callback_name: FromPath[str]) -> dict[str, int]:
        """Put the callback's dead letters (all, a time range, or span ids) back on its queue; they are
        sent with its current settings."""
        pick = selection(await request.body())
        keys = await _callback_keys(admin, delivery, team_id, callback_name)
        return {"replayed": await asyncio.to_thread(replay_keys, delivery, keys, pick)}


def team_destinations(delivery: DeliveryManager, team_id: str) -> list[DestinationHealth]:
    """The team's own callbacks (``team/<id>/<name>/<type>``) that are open; matched on the owning
    team, not a key prefix, so team ``a`` never sees team ``a/b``'s."""
    return [h for h in delivery.health()
            if h.team == team_id and h.key == f"team/{team_id}/{h.name}/{callback_type(h)}" and h.state != "orphaned"]


def callback_type(health: DestinationHealth) -> str:
    return health.key.rsplit("/", 1)[-1]


def ledger(delivery: DeliveryManager, team_id: str, paused: bool) -> list[dict[str, Any]]:
    return [ledger_row(h, delivery.dead_letter_count(h.key), paused) for h in team_destinations(delivery, team_id)]


def ledger_row(h: DestinationHealth, dead_letters: int, paused: bool) -> dict[str, Any]:
    return {"callback_name": h.name, "callback_type": callback_type(h), "state": _state(h, paused),
            "delivered": h.delivered, "failed": h.failed, "queued": h.queued, "retrying": h.retrying,
            "dead_lettered": dead_letters,
            "last_success_at": h.last_success_at, "last_failure_at": h.last_failure_at,
            "last_error": _last_error(h), "lag_p50_ms": h.lag_p50_ms, "lag_p99_ms": h.lag_p99_ms}


def _state(h: DestinationHealth, paused: bool) -> str:
    """paused: the team's logging is disabled; failing: its last attempt failed (or it is backing
    off or stalled); else ok."""
    if paused:
        return "paused"
    last_failed = h.last_failure_at is not None and (h.last_success_at is None
                                                     or h.last_failure_at > h.last_success_at)
    return "failing" if last_failed or h.state in ("backoff", "stalled") else "ok"


def _last_error(h: DestinationHealth) -> dict[str, Any] | None:
    if h.last_error is None:
        return None
    return {"status": h.last_status, "reason": h.last_error[:_REASON_CHARS], "at": h.last_failure_at}


async def _callback_keys(admin: AdminContext, delivery: DeliveryManager, team_id: str, callback_name: str) -> list[str]:
    await admin.known_team(team_id)
    # In a worker thread, as the ledger: health() takes every destination's lock and sorts its lags.
    keys = [h.key for h in await asyncio.to_thread(team_destinations, delivery, team_id) if h.name == callback_name]
    if not keys:
        raise NotFound(f"team {team_id!r} has no {callback_name!r} callback", param="callback_name",
                       code="callback_not_found")
    return keys


def _letters(delivery: DeliveryManager, keys: list[str], limit: int) -> list[dict[str, Any]]:
    found = sorted((letter for key in keys for letter in delivery.dead_letters(key, limit)), key=lambda d: d.at)
    return [letter_json(d) for d in found[-limit:]]


def letter_json(d: DeadLetter) -> dict[str, Any]:
    """Ids as OTel writes them (hex), the call's end time, the model and the short reason; the
    destination's answer (``detail``) and the span's content stay in the store."""
    return {"span_id": f"{d.span_id:016x}", "trace_id": f"{d.trace_id:032x}", "time": d.ended_at,
            "dead_lettered_at": d.at, "model": d.model, "status": d.status,
            "reason": (d.reason or (f"HTTP {d.status}" if d.status else "refused"))[:_REASON_CHARS],
            "callback_type": d.key.rsplit("/", 1)[-1]}


def replay_keys(delivery: DeliveryManager, keys: list[str], pick: Selection) -> int:
    return sum(delivery.replay(key, pick) for key in keys)


# --- the replay body -------------------------------------------------------------------------------


def selection(raw: bytes) -> Selection:
    """``{}`` or no body: every dead letter; ``since`` / ``until`` (unix seconds or ISO 8601, the call's
    end time) and ``span_ids`` (hex, as listed) narrow it, together if both are given."""
    if not raw.strip():
        return Selection()
    check_json_depth(raw)
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidRequest("the body must be a JSON object", code="invalid_value") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object", code="invalid_value")
    unknown = [k for k in body if k not in _SELECTION_FIELDS]
    if unknown:
        raise InvalidRequest(f"unknown field {unknown[0]!r}; allowed: {', '.join(_SELECTION_FIELDS)}",
                             param=str(unknown[0])[:200], code="invalid_value")
    since, until = _when(body.get("since"), "since"), _when(body.get("until"), "until")
    if since is not None and until is not None and since > until:
        raise InvalidRequest("until is before since", param="until", code="invalid_value")
    return Selection(since, until, _span_ids(body.get("span_ids")))


def _when(value: Any, param: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _seconds(value, param)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    raise InvalidRequest(f"{param} must be unix seconds or an ISO 8601 time such as 2026-12-08T10:00:00Z",
                         param=param, code="invalid_value")


def _seconds(value: float, param: str) -> float:
    """json.loads takes NaN, Infinity, 1e400 (inf) and ints of any size (float() overflows: a 500);
    a NaN bound compares false both ways and so selected every dead letter."""
    try:
        seconds = float(value)
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds):
        raise InvalidRequest(f"{param} must be a finite number of unix seconds", param=param, code="invalid_value")
    return seconds


def _span_ids(value: Any) -> frozenset[int] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise InvalidRequest("span_ids must be a non-empty list of span ids (16 hex digits, as listed)",
                             param="span_ids", code="invalid_value")
    ids = set()
    for index, item in enumerate(value):
        if not (isinstance(item, str) and len(item) == 16 and all(c in "0123456789abcdefABCDEF" for c in item)):
            raise InvalidRequest("each span id is 16 hex digits, as the dead-letter list shows it",
                                 param=f"span_ids[{index}]", code="invalid_value")
        ids.add(int(item, 16))
    return frozenset(ids)
