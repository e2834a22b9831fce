"""Typed, validated settings for one LangSmith project.

A team's ``callback_vars`` and the global ``success_callback: ["langsmith"]`` form (whose vars come from
the environment, read by the config layer through ``global_vars``) both become a ``LangSmithConfig``
through ``from_vars``. Every problem raises ``ValueError`` naming the var and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from exporters.plugin import GlobalInputs, check_vars
from exporters.transport.urlpolicy import normalize_base_url

__all__ = ["ALLOWED_VARS", "BASE_URL_VAR", "DEFAULT_BASE_URL", "SECRET_VARS", "LangSmithConfig", "global_vars"]

DEFAULT_BASE_URL: Final = "https://api.smith.langchain.com"
TRACES_PATH: Final = "/otel/v1/traces"

API_KEY_VAR: Final = "langsmith_api_key"
PROJECT_VAR: Final = "langsmith_project"
BASE_URL_VAR: Final = "langsmith_base_url"
TENANT_VAR: Final = "langsmith_tenant_id"  # a workspace, for keys that reach several
ALLOWED_VARS: Final = (API_KEY_VAR, PROJECT_VAR, BASE_URL_VAR, TENANT_VAR)
SECRET_VARS: Final = frozenset({API_KEY_VAR})

# The global form's environment, by var; the first name that is set wins. LangChain's older names and
# LiteLLM's LANGSMITH_BASE_URL are what users bring from their existing deployments.
ENV_NAMES: Final = {
    API_KEY_VAR: ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"),
    PROJECT_VAR: ("LANGSMITH_PROJECT", "LANGCHAIN_PROJECT"),
    BASE_URL_VAR: ("LANGSMITH_ENDPOINT", "LANGSMITH_BASE_URL", "LANGCHAIN_ENDPOINT"),
    TENANT_VAR: ("LANGSMITH_WORKSPACE_ID", "LANGSMITH_TENANT_ID"),
}


@dataclass(frozen=True, slots=True)
class LangSmithConfig:
    """Key, project and host of one LangSmith project; ``repr`` never shows the key."""

    api_key: str
    project: str | None = None  # None: LangSmith's own default project
    base_url: str = DEFAULT_BASE_URL
    tenant_id: str | None = None

    def __repr__(self) -> str:
        return (f"LangSmithConfig(api_key='****', project={self.project!r}, base_url={self.base_url!r}, "
                f"tenant_id={self.tenant_id!r})")

    @property
    def traces_url(self) -> str:
        return self.base_url + TRACES_PATH

    @classmethod
    def from_vars(cls, vars: Mapping[str, Any]) -> LangSmithConfig:
        check_vars("langsmith", vars, ALLOWED_VARS, (API_KEY_VAR,))
        base_url = vars.get(BASE_URL_VAR)
        return cls(
            api_key=_token(API_KEY_VAR, vars[API_KEY_VAR]),
            project=_optional(PROJECT_VAR, vars.get(PROJECT_VAR)),
            base_url=DEFAULT_BASE_URL if base_url is None else _base_url(base_url),
            tenant_id=None if vars.get(TENANT_VAR) is None else _token(TENANT_VAR, vars[TENANT_VAR]),
        )


def global_vars(inputs: GlobalInputs) -> dict[str, Any]:
    out = {}
    for var, names in ENV_NAMES.items():
        value = next((inputs.env[n] for n in names if inputs.env.get(n)), None)
        if value is not None:
            out[var] = value
    return out


def _token(var: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{var} must be a string, not {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValueError(f"{var} must not be empty")
    if any(ch.isspace() or not ch.isprintable() for ch in text) or not text.isascii():
        raise ValueError(f"{var} must be ASCII without whitespace or control characters")
    return text


def _optional(var: str, value: Any) -> str | None:
    """A header value: printable ASCII (httpx sends headers as ASCII; anything else would fail every send)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{var} must be a string, not {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValueError(f"{var} must not be empty")
    if not text.isascii() or not text.isprintable():
        raise ValueError(f"{var} must be printable ASCII (it is sent as the Langsmith-Project header)")
    return text


def _base_url(value: Any) -> str:
    url = normalize_base_url(value, BASE_URL_VAR)
    # LangSmith's own docs give the OTLP base as ``{endpoint}/otel``: accept it without doubling it.
    return url.removesuffix("/otel")
