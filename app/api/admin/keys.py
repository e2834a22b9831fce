"""``/key/*``: virtual keys, shown once at generation and afterwards only by their hash (``token``),
with their own ``metadata.logging`` (see ``key_logging.py``)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.params import FromQuery, HeaderParameter, JSONBody

from app.api.admin.access import KEY_HEADER, as_hash
from app.api.admin.callback_entries import CallbackRules
from app.api.admin.context import Admin, AdminContext, Rules
from app.api.admin.key_logging import key_json, split_key_metadata
from app.api.budgets import LimitFields, budget_for, budgets_of, limit_changes
from app.errors import InvalidRequest, NotFound
from app.store import NotFound as StoreNotFound
from app.teams.secrets import hash_key, key_display_prefix, new_virtual_key
from app.teams.state import utcnow

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_DURATION = timedelta(days=36500)
MAX_PAGE_SIZE = 100


class KeyGenerate(LimitFields):
    team_id: str | None = None
    key_alias: str | None = None
    models: list[str] = msgspec.field(default_factory=list)
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    duration: str | None = None
    user_id: str | None = None  # the key's user, created when unknown; an admin member's key administers its team


class KeyUpdate(LimitFields, kw_only=True):  # kw_only: a required field after LimitFields' defaults
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


def key_not_found() -> NotFound:
    return NotFound("no such key", param="key", code="key_not_found")


class KeyController(Controller):
    path = "/key"
    tags = ["key management"]

    @post("/generate", status_code=200, opt={"body": KeyGenerate})
    async def key_generate(self, admin: Admin, rules: Rules, data: JSONBody[KeyGenerate]) -> dict[str, Any]:
        return await generate_key(admin, rules, data)

    @post("/update", status_code=200, opt={"body": KeyUpdate})
    async def key_update(self, admin: Admin, rules: Rules, data: JSONBody[KeyUpdate]) -> dict[str, Any]:
        token = as_hash(data.key)
        if await admin.store.get_key(token) is None:
            raise key_not_found()
        if data.team_id is not None:
            await admin.known_team(data.team_id)
        fields = {k: v for k, v in (("key_alias", data.key_alias), ("team_id", data.team_id),
                                    ("models", data.models)) if v is not None}
        fields.update(limit_changes(data, utcnow(), update=True))
        if data.duration:
            fields["expires_at"] = utcnow() + parse_duration(data.duration)
        stored = (await admin.store.list_key_callbacks([token])).get(token, ())
        entries = None
        if data.metadata is not None:
            fields["metadata"], entries = await split_key_metadata(rules, token, data.metadata, stored)
        try:
            record = await admin.store.update_key(token, callbacks=entries, **fields)
        except StoreNotFound:  # deleted meanwhile
            raise key_not_found() from None
        await admin.refresh()
        return key_json(record, stored if entries is None else entries, budget_for(await budgets_of(
            admin.store, [record]), record))

    @get("/list")
    async def key_list(self, admin: Admin, page: FromQuery[int] = 1, size: FromQuery[int] = 10,
                       team_id: FromQuery[str | None] = None) -> dict[str, Any]:
        """Every key's hash, alias, team and metadata (logging secrets masked), a page at a time."""
        if page < 1:
            raise InvalidRequest("page must be 1 or more", param="page", code="invalid_value")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidRequest(f"size must be from 1 to {MAX_PAGE_SIZE}", param="size", code="invalid_value")
        records, total = await admin.store.list_keys((page - 1) * size, size, team_id)
        entries = await admin.store.list_key_callbacks(r.token_hash for r in records)
        budgets = await budgets_of(admin.store, records)
        return {"keys": [key_json(r, entries.get(r.token_hash, ()), budget_for(budgets, r)) for r in records],
                "total_count": total,
                "current_page": page, "total_pages": -(-total // size)}

    @get("/info")
    async def key_info(self, admin: Admin, key: FromQuery[str | None] = None,
                       key_header: Annotated[str | None, HeaderParameter(name=KEY_HEADER)] = None) -> dict[str, Any]:
        """LiteLLM's ``?key=`` form still works (the access log never shows it); prefer the header or POST."""
        return await _key_lookup(admin, key or key_header)

    @post("/info", status_code=200)
    async def key_info_post(self, admin: Admin, data: JSONBody[KeyInfo]) -> dict[str, Any]:
        return await _key_lookup(admin, data.key)

    @post("/delete", status_code=200)
    async def key_delete(self, admin: Admin, data: JSONBody[KeyDelete]) -> dict[str, Any]:
        deleted = await admin.store.delete_keys([as_hash(k) for k in data.keys])
        if not deleted:
            raise NotFound("none of the keys exist", param="keys", code="key_not_found")
        await admin.refresh()
        return {"deleted_keys": deleted}


async def generate_key(admin: AdminContext, rules: CallbackRules, data: KeyGenerate) -> dict[str, Any]:
    """A new key, shown once; /user/new makes its user's key through here too."""
    if data.team_id is not None:
        await admin.known_team(data.team_id)
    if data.user_id is not None and not data.user_id.strip():
        raise InvalidRequest("user_id must not be empty", param="user_id", code="invalid_value")
    expires = utcnow() + parse_duration(data.duration) if data.duration else None
    limits = limit_changes(data, utcnow(), update=False)
    plaintext = new_virtual_key()
    token = hash_key(plaintext)
    # Checked in full before anything is written: a typo in metadata.logging saves no key at all.
    metadata, entries = await split_key_metadata(rules, token, data.metadata, ())
    record = await admin.store.create_key(token, key_display_prefix(plaintext), data.team_id, data.key_alias,
                                          data.models, metadata, expires, callbacks=entries or (),
                                          user_id=data.user_id, limits=limits)
    await admin.refresh()
    return {"key": plaintext, **key_json(record, entries or (), budget_for(await budgets_of(admin.store, [record]),
                                                                           record))}


async def _key_lookup(admin: AdminContext, key: str | None) -> dict[str, Any]:
    if not key:
        raise InvalidRequest(f"give the key in a JSON body {{\"key\": ...}} (POST) or the {KEY_HEADER} header",
                             param="key", code="missing_required_parameter")
    token = as_hash(key)
    record = await admin.store.get_key(token)
    if record is None:
        raise key_not_found()
    entries = (await admin.store.list_key_callbacks([token])).get(token, ())
    return {"info": key_json(record, entries, budget_for(await budgets_of(admin.store, [record]), record))}
