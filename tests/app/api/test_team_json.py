"""How a team is shown: its callbacks as ``metadata.logging``, secrets masked, and a ``logging`` value
stored in the metadata itself (written while the form configured nothing) never shown."""

from __future__ import annotations

from datetime import UTC, datetime

from app.api.admin.team_logging import team_json
from app.store import CallbackRecord, CallbackType, TeamRecord
from app.teams.secrets import MASK

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def team(metadata: dict) -> TeamRecord:
    return TeamRecord("t1", None, (), metadata, False, T0, T0)


def test_a_raw_logging_value_stored_before_is_replaced_by_the_callbacks() -> None:
    legacy = {"env": "ci", "logging": [{"callback_name": "langfuse",
                                        "callback_vars": {"langfuse_secret_key": "sk-legacy-clear"}}]}
    assert team_json(team(legacy))["metadata"] == {"env": "ci"}
    entry = CallbackRecord("t1", "langfuse", CallbackType.SUCCESS, "v1.sealed", ("langfuse_secret_key",),
                           {"langfuse_public_key": "pk-1"}, T0)
    shown = team_json(team(legacy), [entry])
    assert shown["metadata"] == {"env": "ci", "logging": [{
        "callback_name": "langfuse", "callback_type": "success",
        "callback_vars": {"langfuse_public_key": "pk-1", "langfuse_secret_key": MASK}}]}
    assert "sk-legacy-clear" not in str(shown) and "v1.sealed" not in str(shown)
