"""Who a call is made for: the key's and team's identity and limits, as authentication found them."""

from __future__ import annotations

from dataclasses import dataclass

from app.calls.limits import ScopeLimits

ALL_MODELS = "all-proxy-models"  # LiteLLM's spelling of "no model limit" in a key's or team's models


@dataclass(frozen=True, slots=True)
class Caller:
    is_admin: bool = False
    key_hash: str | None = None
    key_alias: str | None = None
    team_id: str | None = None
    team_alias: str | None = None
    models: frozenset[str] = frozenset()  # empty: every model
    team_models: frozenset[str] = frozenset()
    expires_at: float | None = None  # unix seconds
    capture_content: bool = True  # False when the key's own settings turn message logging off
    user_id: str | None = None  # whose key it is (LiteLLM's ``user_id``)
    team_admin: bool = False  # the key's user is an admin member of the key's team: it administers that team
    # The key's and its team's budgets and rate limits (app.calls.limits), only those that set any: most
    # callers have none, and the request path skips admission for an empty tuple.
    limits: tuple[ScopeLimits, ...] = ()

    def may_use(self, model: str) -> bool:
        """Within both the key's and the team's models (empty or 'all-proxy-models': no limit)."""
        return all(not allowed or model in allowed or ALL_MODELS in allowed
                   for allowed in (self.models, self.team_models))


ANONYMOUS = Caller()
