"""One logging entry ``{callback_name, callback_type, callback_vars}`` checked and sealed for the store.

Team callbacks (``POST /team/{id}/callback``) and a key's ``metadata.logging`` go through the same
checks, so a typo is a 400 at save time in both places (LiteLLM silently disables logging for a key
whose entry is malformed): an unknown name or var, a masked value posted back, a URL the callback
policy refuses, or an update that would send a stored secret somewhere new without re-sending it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import msgspec

from app.api.services import OpenStore
from app.errors import GatewayError, InvalidRequest
from app.store import CallbackWrite
from app.teams.routing import CALLBACK_TYPES
from app.teams.secrets import MASK, SecretBox, SecretBoxError, is_mask, require_box
from app.teams.state import TURN_OFF_CONTENT
from exporters.content_policy import MESSAGE_LOGGING, POLICY_VARS, message_logging
from exporters.registry import DestinationRegistry, UnknownDestination
from exporters.transport.urlpolicy import CallbackPolicy, url_refusal

_ENTRY_FIELDS = ("callback_name", "callback_type", "callback_vars")
LOGGING = "logging"  # metadata.logging, LiteLLM's key-level (and here team-level) callbacks


class CallbackSet(msgspec.Struct):
    callback_name: str
    callback_vars: dict[str, Any]
    callback_type: str = "success_and_failure"


class CallbackRules:
    """What an entry is checked against and sealed with: the destinations a team or key may name, the
    callback URL policy, and the open store's secret box."""

    __slots__ = ("_store_link", "policy", "registry")

    def __init__(self, registry: DestinationRegistry, policy: CallbackPolicy,
                 store_link: Callable[[], OpenStore | None]) -> None:
        self.registry = registry
        self.policy = policy
        self._store_link = store_link  # read when sealing: the store opens after the app is built

    @property
    def secret_box(self) -> SecretBox | None:
        link = self._store_link()
        return link.secret_box if link is not None else None


class StoredEntry(Protocol):
    """What the credential-family rule and the masked view read of a stored entry (team or key)."""

    @property
    def callback_name(self) -> str: ...
    @property
    def callback_type(self) -> str: ...  # a CallbackType when read back from the store
    @property
    def secret_var_names(self) -> Sequence[str]: ...
    @property
    def plain_vars(self) -> Mapping[str, Any]: ...


async def prepare_callback(rules: CallbackRules, data: CallbackSet, previous: Iterable[StoredEntry], context: str,
                           where: str = "") -> CallbackWrite:
    """Validate ``data`` and encrypt its secrets bound to ``context``; ``previous`` are the stored
    entries it replaces. ``where`` prefixes the 400's ``param`` (``metadata.logging[0].``)."""
    if data.callback_type not in CALLBACK_TYPES:
        raise InvalidRequest(f"callback_type must be one of {', '.join(CALLBACK_TYPES)}",
                             param=f"{where}callback_type", code="invalid_value")
    try:
        kind = rules.registry.get(data.callback_name)
    except UnknownDestination:
        names = ", ".join(rules.registry.team_names)
        raise InvalidRequest(f"unsupported callback_name {data.callback_name!r}; supported: {names}",
                             param=f"{where}callback_name", code="invalid_value") from None
    if not kind.team_configurable:
        raise InvalidRequest(f"{data.callback_name!r} is gateway-wide and cannot be set per team or key; supported: "
                             f"{', '.join(rules.registry.team_names)}", param=f"{where}callback_name",
                             code="invalid_value")
    masked = [k for k, v in data.callback_vars.items() if is_mask(v)]
    if masked:
        raise InvalidRequest(f"callback_vars.{masked[0]} is the mask shown by GET, not a secret; send the real value",
                             param=f"{where}callback_vars.{masked[0]}", code="masked_value")
    given = dict(data.callback_vars)
    _check_policy(given, where)
    for var in POLICY_VARS:  # this destination's content policy, not one of its settings
        given.pop(var, None)
    try:
        parsed = kind.parse(given)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param=f"{where}callback_vars", code="invalid_value") from None
    urls = await allowed_urls(rules.policy, kind.base_urls(parsed), given, where)
    secrets = {k: v for k, v in given.items() if k in kind.secret_vars}
    secrets_follow_their_urls(previous, data, urls, secrets, where)
    # URLs are stored as normalised (what GET shows is what is connected to)
    plain = {k: urls.get(k, v) for k, v in data.callback_vars.items() if k not in kind.secret_vars}
    ciphertext = None
    if secrets:
        try:
            box = require_box(rules.secret_box)
        except SecretBoxError as exc:
            raise GatewayError(str(exc), status=503, code="secrets_unavailable") from None
        ciphertext = box.encrypt(secrets, context=context)
    return CallbackWrite(data.callback_name, data.callback_type, ciphertext, tuple(secrets), plain)


def _check_policy(given: Mapping[str, Any], where: str) -> None:
    try:
        message_logging(given)
    except ValueError as exc:
        var = MESSAGE_LOGGING if MESSAGE_LOGGING in given else TURN_OFF_CONTENT
        raise InvalidRequest(f"callback_vars.{exc}", param=f"{where}callback_vars.{var}",
                             code="invalid_value") from None


def secrets_follow_their_urls(previous: Iterable[StoredEntry], data: CallbackSet, urls: Mapping[str, str],
                              secrets: Mapping[str, Any], where: str = "") -> None:
    """A stored secret is only ever sent where it was sent when stored: an entry that moves to another
    host or endpoint must bring its secrets again, so an admin who can change URLs but never saw the
    secrets cannot redirect them. An entry that stays but leaves out a stored (optional) secret is
    refused too: a replacement must not drop it silently, nor keep it when the admin meant to drop it."""
    for record in previous:
        if (record.callback_name != data.callback_name or str(record.callback_type) != data.callback_type
                or not record.secret_var_names):
            continue
        given = {var: urls[var] if var in data.callback_vars else None for var in urls}
        moved = [var for var, url in given.items() if url != record.plain_vars.get(var)]
        missing = sorted(name for name in record.secret_var_names if name not in secrets)
        if moved and missing:
            raise InvalidRequest(f"callback_vars.{moved[0]} changes where {data.callback_name} sends its stored "
                                 f"secret; send {', '.join(missing)} again with it (or delete the callback "
                                 "first)", param=f"{where}callback_vars.{moved[0]}", code="secret_must_be_resent")
        if missing:
            raise _secret_left_out(data.callback_name, missing, where)


def _secret_left_out(callback_name: str, missing: Sequence[str], where: str) -> InvalidRequest:
    return InvalidRequest(f"callback_vars.{missing[0]} is stored for this {callback_name} callback and this update "
                          f"would drop it; send {', '.join(missing)} again to keep it, or delete the callback first "
                          "to remove it", param=f"{where}callback_vars.{missing[0]}", code="secret_must_be_resent")


async def allowed_urls(policy: CallbackPolicy, urls: Mapping[str, str], given: Mapping[str, Any],
                       where: str = "") -> Mapping[str, str]:
    """The destination's URLs (var -> normalised URL), each one the callback policy allows; else a 400
    naming the var and why. The connection is checked again when it is made (DNS may change)."""
    for var, url in urls.items():
        if var not in given and not policy.restricted:
            continue  # a built-in default (cloud.langfuse.com): nothing to look up
        reason = await url_refusal(policy, url)
        if reason is not None:
            raise InvalidRequest(f"callback_vars.{var}: address not allowed: {reason}",
                                 param=f"{where}callback_vars.{var}", code="callback_url_not_allowed")
    return urls


async def split_logging(rules: CallbackRules, metadata: Mapping[str, Any], previous: Sequence[StoredEntry],
                        context_of: Callable[[str, str], str]) -> tuple[dict[str, Any], list[CallbackWrite] | None]:
    """(metadata to store, the owner's logging entries to store), every entry checked before any is
    sealed; the entries are None when the metadata has no ``logging`` (an update then keeps the
    owner's entries). ``context_of(name, type)`` binds each entry's ciphertext to its owner."""
    flag = metadata.get(TURN_OFF_CONTENT)
    if flag is not None and not isinstance(flag, bool):
        raise InvalidRequest(f"metadata.{TURN_OFF_CONTENT} must be true or false", param=f"metadata.{TURN_OFF_CONTENT}",
                             code="invalid_value")
    plain = {k: v for k, v in metadata.items() if k != LOGGING}
    if metadata.get(LOGGING) is None:
        return plain, None
    return plain, [await prepare_callback(rules, entry, previous, context_of(entry.callback_name,
                                                                             entry.callback_type), where)
                   for where, entry in logging_entries(metadata[LOGGING])]


def logging_entries(value: Any, param: str = "metadata.logging") -> list[tuple[str, CallbackSet]]:
    """A key's ``metadata.logging`` as LiteLLM users write it -> (param prefix, entry) pairs; a field
    that is not one of the three (a typo such as ``callback_var``) is refused, not ignored."""
    if not isinstance(value, list):
        raise InvalidRequest(f"{param} must be a list of {{callback_name, callback_type, callback_vars}}",
                             param=param, code="invalid_value")
    out: list[tuple[str, CallbackSet]] = []
    seen: set[tuple[str, str]] = set()
    for index, raw in enumerate(value):
        where = f"{param}[{index}]."
        if not isinstance(raw, dict):
            raise InvalidRequest(f"{param}[{index}] must be an object", param=f"{param}[{index}]", code="invalid_value")
        unknown = [k for k in raw if k not in _ENTRY_FIELDS]
        if unknown:
            raise InvalidRequest(f"{param}[{index}]: unknown field {unknown[0]!r}; allowed: {', '.join(_ENTRY_FIELDS)}",
                                 param=f"{where}{unknown[0]}"[:200], code="invalid_value")
        try:
            entry = msgspec.convert(raw, CallbackSet)
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"{param}[{index}]: {exc}", param=f"{param}[{index}]", code="invalid_value") from None
        if (entry.callback_name, entry.callback_type) in seen:
            raise InvalidRequest(f"{param}[{index}]: a second {entry.callback_name} {entry.callback_type} entry; "
                                 "give each name and type once", param=f"{where}callback_name", code="duplicate_entry")
        seen.add((entry.callback_name, entry.callback_type))
        out.append((where, entry))
    return out


def masked_vars(entry: StoredEntry) -> dict[str, Any]:
    return {**entry.plain_vars, **dict.fromkeys(entry.secret_var_names, MASK)}


def masked_entries(entries: Sequence[StoredEntry]) -> list[dict[str, Any]]:
    """Entries as ``metadata.logging`` shows them: stored secrets replaced by the mask."""
    return [{"callback_name": e.callback_name, "callback_type": str(e.callback_type), "callback_vars": masked_vars(e)}
            for e in entries]
