"""Typed, validated settings for one Sentry project, from a team's ``callback_vars`` or the environment.

The DSN is the only required var. It is a credential (its public key is what Sentry authenticates
an envelope with) and it is also the address events go to, so it is secret (encrypted at rest,
masked by GET) and its base URL (``scheme://host[:port][/prefix]``) is what the callback policy
checks. Errors name the var and what is wrong, never the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from exporters.plugin import check_vars
from exporters.transport.urlpolicy import normalize_base_url

__all__ = ["ALLOWED_VARS", "DSN_VAR", "ENV_VARS", "NAME", "SECRET_VARS", "SentryConfig"]

NAME: Final = "sentry"
DSN_VAR: Final = "sentry_dsn"
ENVIRONMENT_VAR: Final = "sentry_environment"
ALLOWED_VARS: Final = (DSN_VAR, ENVIRONMENT_VAR)
SECRET_VARS: Final = frozenset({DSN_VAR})
ENV_VARS: Final = {DSN_VAR: "SENTRY_DSN", ENVIRONMENT_VAR: "SENTRY_ENVIRONMENT"}
DEFAULT_ENVIRONMENT: Final = "production"  # sentry-sdk's own default, set here so it never reads the env
_EXAMPLE = "https://<public key>@o0.ingest.sentry.io/<project id>"


@dataclass(frozen=True, slots=True)
class SentryConfig:
    """One DSN (validated) and the environment events are tagged with; ``repr`` hides the key."""

    dsn: str
    environment: str = DEFAULT_ENVIRONMENT
    base_url: str = ""  # derived from the DSN: where envelopes go, for the callback policy

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", _base_url(self.dsn))
        if not self.environment or len(self.environment) > 64 or any(c.isspace() for c in self.environment):
            raise ValueError(f"{ENVIRONMENT_VAR} must be 1-64 characters without whitespace")

    def __repr__(self) -> str:
        return f"SentryConfig(base_url={self.base_url!r}, project_id={self.project_id!r}, " \
               f"environment={self.environment!r})"

    @property
    def project_id(self) -> str:
        return urlsplit(self.dsn).path.rstrip("/").rsplit("/", 1)[-1]

    @classmethod
    def from_vars(cls, vars: Mapping[str, Any]) -> SentryConfig:
        check_vars("sentry", vars, ALLOWED_VARS, (DSN_VAR,))
        dsn = vars[DSN_VAR]
        if not isinstance(dsn, str):
            raise ValueError(f"{DSN_VAR} must be a string such as {_EXAMPLE}")
        environment = vars.get(ENVIRONMENT_VAR, DEFAULT_ENVIRONMENT)
        if not isinstance(environment, str):
            raise ValueError(f"{ENVIRONMENT_VAR} must be a string")
        return cls(dsn=dsn.strip(), environment=environment.strip())


def _base_url(dsn: str) -> str:
    """``scheme://host[:port][/prefix]`` of a DSN, checked as sentry-sdk's ``Dsn`` would parse it."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{DSN_VAR} must be an http(s) DSN such as {_EXAMPLE}")
    if not parts.username:
        raise ValueError(f"{DSN_VAR} has no public key (the part before '@'); expected {_EXAMPLE}")
    if parts.query or parts.fragment:
        raise ValueError(f"{DSN_VAR} must not have a query or a fragment")
    prefix, _, project_id = parts.path.rstrip("/").rpartition("/")
    if not project_id.isdigit():
        raise ValueError(f"{DSN_VAR} must end with a numeric project id; expected {_EXAMPLE}")
    host = parts.netloc.rpartition("@")[2]
    return normalize_base_url(f"{parts.scheme}://{host}{prefix}", DSN_VAR)
