"""A team's ``metadata``: its ``logging`` entries split off, checked and sealed as the team's callbacks.

LiteLLM users write team logging the way they write a key's: ``{"metadata": {"logging": [...]}}``
on /team/new and /team/update. Those entries become the team's callbacks, the very rows
``POST /team/{id}/callback`` writes (``team_callbacks``, secrets encrypted, bound to the team), so
``GET /team/{id}/callback`` shows them and the router uses them like any other. The team is shown
with its callbacks, masked, as ``metadata.logging`` (/team/new, /team/info, /team/update,
/team/list): the two forms are two views of one set.

On /team/update, a ``metadata.logging`` list replaces the team's callbacks as a whole (those set
through /team/{id}/callback included), as a key's list replaces the key's entries: what the list
says is what the team logs to afterwards. ``[]`` removes them all; metadata without ``logging``
(or with ``"logging": null``) leaves them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.api.admin.callback_entries import LOGGING, CallbackRules, StoredEntry, masked_entries, split_logging
from app.config.keys import ConfigError
from app.errors import InvalidRequest
from app.hooks.moderation import check_team_metadata
from app.store import CallbackWrite, TeamRecord
from app.teams.state import secret_context


async def split_team_metadata(rules: CallbackRules, team_id: str, metadata: Mapping[str, Any],
                              previous: Sequence[StoredEntry]) -> tuple[dict[str, Any], list[CallbackWrite] | None]:
    """(metadata to store, the team's callbacks to store); the callbacks are None when the metadata
    has no ``logging`` (an update then keeps the team's callbacks as they are). Hooks' settings in it
    (``azure_content_safety_params``) must parse too: refused here with 400, not ignored later."""
    try:
        check_team_metadata(metadata)
    except ConfigError as exc:
        raise InvalidRequest(str(exc), param="metadata", code="invalid_value") from None
    return await split_logging(rules, metadata, previous,
                               lambda name, kind: secret_context(team_id, name, kind))


def team_json(team: TeamRecord, entries: Sequence[StoredEntry] = (),
              budget: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A team as the admin API shows it, its callbacks (secrets masked) as ``metadata.logging``, and
    ``budget``: its limits and spend (``app.api.budgets.budgets_of``).

    A ``logging`` value stored in the metadata itself (written before this form was understood, when
    it configured nothing and was kept as it came, secrets included) is never shown."""
    metadata = {k: v for k, v in team.metadata.items() if k != LOGGING}
    if entries:
        metadata[LOGGING] = masked_entries(entries)
    return {"team_id": team.team_id, "team_alias": team.team_alias, "models": list(team.models),
            "metadata": metadata, "logging_disabled": team.logging_disabled,
            "created_at": team.created_at.isoformat(), "updated_at": team.updated_at.isoformat(), **(budget or {})}
