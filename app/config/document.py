"""The YAML document's top level, read before any section: ``environment_variables`` applied, every
``os.environ/NAME`` reference resolved (here and nowhere else), each section checked to be a mapping,
and every unknown key warned about or, for a likely misspelling of a key that guards calls, refused.

Unknown keys are all checked first, so a misspelt ``master_ky`` is what stops start-up even when a
value elsewhere is bad too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.config.keys import (
    KNOWN_GENERAL,
    KNOWN_LITELLM,
    KNOWN_SPANGATE,
    KNOWN_TOP,
    ConfigError,
    is_destination_key,
    unknown_keys,
)
from app.config.values import as_mapping

ENV_PREFIX = "os.environ/"


@dataclass(frozen=True, slots=True)
class ConfigDocument:
    """The top level with references resolved; the sections still as the YAML gave them."""

    top: Mapping[str, Any] = field(repr=False)
    environment_variables: Mapping[str, str] = field(repr=False)
    env: Mapping[str, str] = field(repr=False)  # the process environment, environment_variables over it
    litellm: Mapping[str, Any] = field(repr=False)
    general: Mapping[str, Any] = field(repr=False)
    spangate: Mapping[str, Any] = field(repr=False)
    warnings: tuple[str, ...]  # unknown keys, the top level's first


def read_document(raw: Any, environ: Mapping[str, str]) -> ConfigDocument:
    top = as_mapping(raw, "config")
    warnings = unknown_keys(top, KNOWN_TOP, "")
    env_vars = environment_variables(top.get("environment_variables"))
    env = {**environ, **env_vars}
    top = resolve_env(top, env, "")
    litellm = as_mapping(top.get("litellm_settings") or {}, "litellm_settings")
    general = as_mapping(top.get("general_settings") or {}, "general_settings")
    spangate = as_mapping(top.get("spangate_settings") or {}, "spangate_settings")
    own = {k: v for k, v in litellm.items() if not is_destination_key(k)}
    warnings += unknown_keys(own, KNOWN_LITELLM, "litellm_settings.")
    warnings += unknown_keys(general, KNOWN_GENERAL, "general_settings.")
    warnings += unknown_keys(spangate, KNOWN_SPANGATE, "spangate_settings.")
    return ConfigDocument(top, env_vars, env, litellm, general, spangate, tuple(warnings))


def environment_variables(raw: Any) -> dict[str, str]:
    """``environment_variables``: as written (references in it are not resolved), values as text."""
    return {str(k): str(v) for k, v in as_mapping(raw or {}, "environment_variables").items()}


def resolve_env(value: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX):]
        if name not in env:
            raise ConfigError(f"{where or 'config'}: environment variable {name} is not set "
                              f"(referenced as {value})")
        return env[name]
    if isinstance(value, Mapping):
        return {k: resolve_env(v, env, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    return value
