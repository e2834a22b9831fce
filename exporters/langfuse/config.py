"""Typed, validated settings for one Langfuse project.

Two inputs produce the same ``LangfuseConfig``: a team's ``callback_vars`` (the admin API and
``default_team_settings``) through ``from_vars``, and the global ``success_callback: ["langfuse"]``
form, whose variables come from the environment named in ``ENV_VARS`` (read by the config layer,
never here). Every problem raises ``ValueError`` naming the variable and what is allowed, so the
API can answer 400 and start-up can stop with a useful message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from exporters.plugin import credential
from exporters.transport.urlpolicy import normalize_base_url

__all__ = ["ALLOWED_VARS", "DEFAULT_HOST", "ENV_VARS", "NAME", "SECRET_VARS", "LangfuseConfig"]

NAME: Final = "langfuse"
DEFAULT_HOST: Final = "https://cloud.langfuse.com"
TRACES_PATH: Final = "/api/public/otel/v1/traces"

PUBLIC_KEY_VAR: Final = "langfuse_public_key"
SECRET_KEY_VAR: Final = "langfuse_secret_key"
SECRET_ALIAS_VAR: Final = "langfuse_secret"  # the seed's config form spells it this way
HOST_VAR: Final = "langfuse_host"
ALLOWED_VARS: Final = (PUBLIC_KEY_VAR, SECRET_KEY_VAR, SECRET_ALIAS_VAR, HOST_VAR)

# Variables whose values are credentials: masked in responses, encrypted at rest. The alias is
# listed too, so a var stored under the seed's spelling is never shown in clear.
SECRET_VARS: Final = frozenset({SECRET_KEY_VAR, SECRET_ALIAS_VAR})
# Environment variables of the global form, by callback var.
ENV_VARS: Final = {
    PUBLIC_KEY_VAR: "LANGFUSE_PUBLIC_KEY",
    SECRET_KEY_VAR: "LANGFUSE_SECRET_KEY",
    HOST_VAR: "LANGFUSE_HOST",
}
_SECRET_MASK = "****"


@dataclass(frozen=True, slots=True)
class LangfuseConfig:
    """Credentials and host of one Langfuse project; ``repr`` never shows the secret key."""

    public_key: str
    secret_key: str
    host: str = DEFAULT_HOST

    def __post_init__(self) -> None:
        object.__setattr__(self, "public_key", credential(PUBLIC_KEY_VAR, self.public_key))
        object.__setattr__(self, "secret_key", credential(SECRET_KEY_VAR, self.secret_key))
        object.__setattr__(self, "host", _host(self.host))
        if ":" in self.public_key:
            # Basic auth splits user and password at the first colon.
            raise ValueError(f"{PUBLIC_KEY_VAR} must not contain ':'")

    def __repr__(self) -> str:
        return (
            f"LangfuseConfig(public_key={self.public_key!r}, secret_key='{_SECRET_MASK}', host={self.host!r})"
        )

    @property
    def traces_url(self) -> str:
        """Langfuse's OTLP/HTTP traces endpoint for this host."""
        return self.host + TRACES_PATH

    @classmethod
    def from_vars(cls, vars: Mapping[str, Any]) -> LangfuseConfig:
        """Validate a team's ``callback_vars`` (``langfuse_secret`` is accepted for the secret)."""
        allowed = ", ".join(ALLOWED_VARS)
        for name in vars:
            if name not in ALLOWED_VARS:
                raise ValueError(f"unknown langfuse callback var {name!r}; allowed: {allowed}")
        if SECRET_KEY_VAR in vars and SECRET_ALIAS_VAR in vars:
            raise ValueError(f"give only one of {SECRET_KEY_VAR!r} and its alias {SECRET_ALIAS_VAR!r}")
        secret_var = SECRET_ALIAS_VAR if SECRET_ALIAS_VAR in vars else SECRET_KEY_VAR
        for name in (PUBLIC_KEY_VAR, secret_var):
            if vars.get(name) is None:
                raise ValueError(f"missing langfuse callback var {name!r}; allowed: {allowed}")
        host = vars.get(HOST_VAR)
        return cls(
            public_key=credential(PUBLIC_KEY_VAR, vars[PUBLIC_KEY_VAR]),
            secret_key=credential(secret_var, vars[secret_var]),
            host=DEFAULT_HOST if host is None else _host(host),
        )



def _host(value: Any) -> str:
    return normalize_base_url(value, HOST_VAR)
