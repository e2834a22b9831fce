"""Typed settings of one Athina workspace: its API key and the logging host.

Team form (``callback_vars``): ``athina_api_key`` (required, secret) and ``athina_base_url``
(default ``https://log.athina.ai``). Global form: ``ATHINA_API_KEY`` and ``ATHINA_BASE_URL``, the
names LiteLLM reads. Errors name the var, never its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from exporters.plugin import check_vars
from exporters.transport.urlpolicy import normalize_base_url

__all__ = ["ALLOWED_VARS", "BASE_URL_VAR", "DEFAULT_BASE_URL", "ENV_VARS", "SECRET_VARS", "AthinaConfig"]

DEFAULT_BASE_URL: Final = "https://log.athina.ai"
INFERENCE_PATH: Final = "/api/v1/log/inference"
API_KEY_VAR: Final = "athina_api_key"
BASE_URL_VAR: Final = "athina_base_url"
ALLOWED_VARS: Final = (API_KEY_VAR, BASE_URL_VAR)
SECRET_VARS: Final = frozenset({API_KEY_VAR})
ENV_VARS: Final = {API_KEY_VAR: "ATHINA_API_KEY", BASE_URL_VAR: "ATHINA_BASE_URL"}


@dataclass(frozen=True, slots=True)
class AthinaConfig:
    api_key: str
    base_url: str = DEFAULT_BASE_URL

    def __repr__(self) -> str:
        return f"AthinaConfig(api_key='****', base_url={self.base_url!r})"

    @property
    def inference_url(self) -> str:
        return self.base_url + INFERENCE_PATH

    @classmethod
    def from_vars(cls, vars: Mapping[str, Any]) -> AthinaConfig:
        check_vars("athina", vars, ALLOWED_VARS, (API_KEY_VAR,))
        base_url = vars.get(BASE_URL_VAR)
        return cls(api_key=_key(vars[API_KEY_VAR]),
                   base_url=DEFAULT_BASE_URL if base_url is None else normalize_base_url(base_url, BASE_URL_VAR))


def _key(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{API_KEY_VAR} must be a string, not {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValueError(f"{API_KEY_VAR} must not be empty")
    if any(ch.isspace() or not ch.isprintable() for ch in text):  # it goes into a header
        raise ValueError(f"{API_KEY_VAR} must not contain whitespace or control characters")
    return text
