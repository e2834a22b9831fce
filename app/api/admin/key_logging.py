"""A virtual key's ``metadata``: its ``logging`` entries split off, checked and sealed; and the key as shown.

``metadata.logging`` is stored apart from the rest of the metadata (the ``key_callbacks`` table,
secrets encrypted), and put back, masked, whenever a key is shown: /key/generate, /key/info,
/key/update, /key/list and /team/info never return a callback secret in clear.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.api.admin.callback_entries import LOGGING, CallbackRules, StoredEntry, masked_entries, split_logging
from app.store import CallbackWrite, KeyRecord
from app.teams.state import key_secret_context


async def split_key_metadata(rules: CallbackRules, token_hash: str, metadata: Mapping[str, Any],
                             previous: Sequence[StoredEntry]) -> tuple[dict[str, Any], list[CallbackWrite] | None]:
    """(metadata to store, the key's logging entries to store); the entries are None when the
    metadata has no ``logging`` (an update then keeps the key's entries as they are)."""
    return await split_logging(rules, metadata, previous,
                               lambda name, kind: key_secret_context(token_hash, name, kind))


def key_json(record: KeyRecord, entries: Sequence[StoredEntry] = (),
             budget: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A key as the admin API shows it: its hash as ``token``, never the key; logging secrets masked;
    ``budget``: its limits and spend (``app.api.budgets.budgets_of``)."""
    metadata = dict(record.metadata)
    if entries:
        metadata[LOGGING] = masked_entries(entries)
    return {"token": record.token_hash, "key_name": record.key_prefix, "key_alias": record.key_alias,
            "team_id": record.team_id, "user_id": record.user_id, "models": list(record.models), "metadata": metadata,
            "expires": record.expires_at.isoformat() if record.expires_at else None,
            "created_at": record.created_at.isoformat(), **(budget or {})}
