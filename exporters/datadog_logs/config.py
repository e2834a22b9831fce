"""Typed, validated settings for one Datadog logs destination.

Two inputs produce a ``DatadogConfig``: a team's ``callback_vars`` through ``from_vars``, and the
global ``success_callback: ["datadog"]`` form, whose vars come from the environment named in
``ENV_VARS`` (read by the config layer through ``global_vars``, never here).

Where the API key goes is the one thing a team must not be able to choose freely: a team names a
site from ``KNOWN_SITES`` (``dd_site``), which becomes ``https://http-intake.logs.<site>``.
``DD_BASE_URL`` (any URL: a proxy, a loopback sink in tests) is the operator's alone. The config
layer hands it over wrapped in ``OperatorValue``, a type no JSON body or stored var can produce, so
a team that sends ``dd_base_url`` in its ``callback_vars`` gets a 400 instead of a redirected key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from exporters.plugin import GlobalInputs, env_vars
from exporters.transport.urlpolicy import normalize_base_url

__all__ = ["ALLOWED_VARS", "ENV_VARS", "KNOWN_SITES", "SECRET_VARS", "DatadogConfig", "OperatorValue", "global_vars"]

API_KEY_VAR: Final = "dd_api_key"
SITE_VAR: Final = "dd_site"
BASE_URL_VAR: Final = "dd_base_url"  # operator-only (global form)
SOURCE_VAR: Final = "dd_source"
SERVICE_VAR: Final = "dd_service"
ENV_VAR: Final = "dd_env"
ALLOWED_VARS: Final = (API_KEY_VAR, SITE_VAR, SOURCE_VAR, SERVICE_VAR, ENV_VAR)
SECRET_VARS: Final = frozenset({API_KEY_VAR})
ENV_VARS: Final = {
    API_KEY_VAR: "DD_API_KEY",
    SITE_VAR: "DD_SITE",
    SOURCE_VAR: "DD_SOURCE",
    SERVICE_VAR: "DD_SERVICE",
    ENV_VAR: "DD_ENV",
}
BASE_URL_ENV: Final = "DD_BASE_URL"

# The sites datadog-api-client 2.62 lists for ``submit_log`` (its ``site`` enum; a test keeps the two
# in step). Each is a Datadog region whose logs intake is https://http-intake.logs.<site>.
KNOWN_SITES: Final = (
    "datadoghq.com", "us3.datadoghq.com", "us5.datadoghq.com", "ap1.datadoghq.com", "ap2.datadoghq.com",
    "uk1.datadoghq.com", "datadoghq.eu", "ddog-gov.com", "us2.ddog-gov.com",
)
DEFAULT_SITE: Final = "datadoghq.com"
DEFAULT_SOURCE: Final = "spangate"
DEFAULT_SERVICE: Final = "spangate"
_MAX_LABEL = 100  # source, service and env are tag values: short words, not documents


@dataclass(frozen=True, slots=True)
class OperatorValue:
    """A var only the operator's configuration may set; JSON bodies and stored vars are never this type."""

    value: str


def global_vars(inputs: GlobalInputs) -> dict[str, Any]:
    """The global form: ``DD_*`` environment variables, ``DD_BASE_URL`` marked as the operator's."""
    found = env_vars(inputs.env, ENV_VARS)
    if inputs.env.get(BASE_URL_ENV):
        found[BASE_URL_VAR] = OperatorValue(inputs.env[BASE_URL_ENV])
    return found


@dataclass(frozen=True, slots=True)
class DatadogConfig:
    """One Datadog account's API key and where it is sent; ``repr`` never shows the key."""

    api_key: str
    site: str = DEFAULT_SITE
    base_url: str | None = None  # the operator's override of the intake URL; wins over ``site``
    source: str = DEFAULT_SOURCE
    service: str = DEFAULT_SERVICE
    env: str | None = None

    def __repr__(self) -> str:
        return (f"DatadogConfig(api_key='****', intake_url={self.intake_url!r}, source={self.source!r}, "
                f"service={self.service!r}, env={self.env!r})")

    @property
    def intake_url(self) -> str:
        """The base URL the logs (and the key) go to."""
        return self.base_url or f"https://http-intake.logs.{self.site}"

    @classmethod
    def from_vars(cls, vars: Mapping[str, Any]) -> DatadogConfig:
        """Validate vars in either form; a ``ValueError`` names the var and what is allowed."""
        allowed = ", ".join(ALLOWED_VARS)
        for name, value in vars.items():
            if name == BASE_URL_VAR and not isinstance(value, OperatorValue):
                raise ValueError(f"datadog callback var {BASE_URL_VAR!r} is the operator's ({BASE_URL_ENV} in the "
                                 f"gateway's environment); a team chooses a Datadog site with {SITE_VAR!r}")
            if name not in ALLOWED_VARS and name != BASE_URL_VAR:
                raise ValueError(f"unknown datadog callback var {name!r}; allowed: {allowed}")
        if vars.get(API_KEY_VAR) is None:
            raise ValueError(f"missing datadog callback var {API_KEY_VAR!r} ({ENV_VARS[API_KEY_VAR]} in the global "
                             f"form); allowed: {allowed}")
        base_url = vars.get(BASE_URL_VAR)
        return cls(
            api_key=_key(vars[API_KEY_VAR]),
            site=_site(vars.get(SITE_VAR, DEFAULT_SITE)),
            base_url=None if base_url is None else normalize_base_url(base_url.value, BASE_URL_ENV),
            source=_label(SOURCE_VAR, vars.get(SOURCE_VAR, DEFAULT_SOURCE)),
            service=_label(SERVICE_VAR, vars.get(SERVICE_VAR, DEFAULT_SERVICE)),
            env=None if vars.get(ENV_VAR) is None else _label(ENV_VAR, vars[ENV_VAR]),
        )


def _key(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{API_KEY_VAR} must be a string, not {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValueError(f"{API_KEY_VAR} must not be empty")
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise ValueError(f"{API_KEY_VAR} must not contain whitespace or control characters")
    return text


def _site(value: Any) -> str:
    text = value.strip().lower().removesuffix(".") if isinstance(value, str) else None
    if text not in KNOWN_SITES:
        # The value is not echoed: a key pasted into the wrong field must not land in a 400 or a log.
        raise ValueError(f"{SITE_VAR} must be one of Datadog's sites: {', '.join(KNOWN_SITES)}")
    return text


def _label(var: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{var} must be a string, not {type(value).__name__}")
    text = value.strip()
    if not text or len(text) > _MAX_LABEL or any(not ch.isprintable() or ch in ", " for ch in text):
        raise ValueError(f"{var} must be 1-{_MAX_LABEL} printable characters without spaces or commas")
    return text
