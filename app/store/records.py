"""What the store hands out: frozen records, the snapshot, and the store's errors.

Exceptions::

    StoreError
    ├── NotFound          the team (or key, user, member) named does not exist
    ├── AlreadyExists     a team id, key hash, user id or membership is taken
    └── StoreUnavailable  the database could not be reached or answered with an error

Records are shared by every reader of a snapshot (the request path included), so their
``models`` are tuples and callers must treat ``metadata`` / ``plain_vars`` as read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class StoreUnavailable(StoreError):
    """The database failed; the message names the operation, never the statement's values."""


class CallbackType(StrEnum):
    """Which calls' spans a destination takes; one type for the store, the API and the config's lists."""

    SUCCESS = "success"
    FAILURE = "failure"
    SUCCESS_AND_FAILURE = "success_and_failure"

    @classmethod
    def of(cls, *, success: bool, failure: bool) -> CallbackType:
        """The type of a callback named in the success list, the failure list, or both."""
        if success and failure:
            return cls.SUCCESS_AND_FAILURE
        return cls.SUCCESS if success else cls.FAILURE


@dataclass(frozen=True, slots=True)
class TeamRecord:
    team_id: str
    team_alias: str | None
    models: tuple[str, ...]
    metadata: dict[str, Any]
    logging_disabled: bool
    created_at: datetime
    updated_at: datetime
    # Budgets and rate limits (app.calls.limits); None: no limit. budget_anchor: when the first budget
    # period began (set with budget_duration).
    max_budget: float | None = None
    soft_budget: float | None = None
    budget_duration: str | None = None
    budget_anchor: datetime | None = None
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    max_parallel_requests: int | None = None


@dataclass(frozen=True, slots=True)
class KeyRecord:
    token_hash: str
    key_prefix: str
    key_alias: str | None
    team_id: str | None
    models: tuple[str, ...]
    metadata: dict[str, Any]
    expires_at: datetime | None
    created_at: datetime
    user_id: str | None = None  # whose key it is (LiteLLM's /key/generate ``user_id``); admin rights follow it
    # Budgets and rate limits (app.calls.limits); None: no limit. budget_anchor: when the first budget
    # period began (set with budget_duration).
    max_budget: float | None = None
    soft_budget: float | None = None
    budget_duration: str | None = None
    budget_anchor: datetime | None = None
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    max_parallel_requests: int | None = None

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


class MemberRole(StrEnum):
    """A user's role in one team, LiteLLM's ``member.role``: an admin's keys of that team administer it."""

    ADMIN = "admin"
    USER = "user"


@dataclass(frozen=True, slots=True)
class UserRecord:
    user_id: str
    user_email: str | None
    user_role: str  # LiteLLM's proxy-wide role, kept as given; authorisation reads team roles only
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MemberRecord:
    team_id: str
    user_id: str
    role: MemberRole
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MemberWrite:
    """One member to add: by user id, else by email (an unknown one becomes a new user)."""

    user_id: str | None
    user_email: str | None
    role: MemberRole


@dataclass(frozen=True, slots=True)
class CallbackRecord:
    team_id: str
    callback_name: str
    callback_type: CallbackType
    vars_ciphertext: str | None  # None when the callback has no secret vars
    secret_var_names: tuple[str, ...]
    plain_vars: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class KeyCallbackRecord:
    """A virtual key's own logging entry (``metadata.logging``); for that key's calls it replaces its
    team's (and the global) entry of the same destination type."""

    token_hash: str
    callback_name: str
    callback_type: CallbackType
    vars_ciphertext: str | None
    secret_var_names: tuple[str, ...]
    plain_vars: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class CallbackWrite:
    """One validated entry ready to store: secrets already encrypted, the rest in clear."""

    callback_name: str
    callback_type: str
    vars_ciphertext: str | None
    secret_var_names: tuple[str, ...]
    plain_vars: Mapping[str, Any]


LIMIT_FIELDS = ("max_budget", "soft_budget", "budget_duration", "budget_anchor", "tpm_limit", "rpm_limit",
                "max_parallel_requests")


@dataclass(frozen=True, slots=True)
class SpendRow:
    """One call in the spend log (LiteLLM's ``/spend/logs`` row), and what it adds to the counters of
    its key (``key:<token_hash>``, budget period ``key_period``) and its team (``team:<id>``, ``team_period``).
    ``request_id`` is unique per call: recording a row twice adds it once."""

    request_id: str
    token_hash: str | None  # the full hash of a virtual key; None for the master key or no key
    team_id: str | None
    user_id: str | None
    model: str | None
    call_type: str
    status: str  # "success" or "failure"
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    spend_nanos: int  # USD 1e-9 (app.calls.limits)
    start_time: datetime
    end_time: datetime
    key_period: int = 0  # unix seconds of the budget period's start; 0 without a budget duration
    team_period: int = 0

    def counters(self) -> list[tuple[str, int]]:
        out = []
        if self.token_hash is not None:
            out.append((f"key:{self.token_hash}", self.key_period))
        if self.team_id is not None:
            out.append((f"team:{self.team_id}", self.team_period))
        return out


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    """Everything in the store as of one ``version``, read in a single transaction."""

    version: int
    teams: Mapping[str, TeamRecord]
    keys: Mapping[str, KeyRecord]
    callbacks: Mapping[str, tuple[CallbackRecord, ...]]  # team_id -> its callbacks, by name then type
    # token_hash -> the key's own logging entries; only keys that have some are present
    key_callbacks: Mapping[str, tuple[KeyCallbackRecord, ...]] = field(default_factory=dict)
    # (team_id, user_id) of every admin member: the key index marks a key whose user administers its team
    team_admins: frozenset[tuple[str, str]] = frozenset()
