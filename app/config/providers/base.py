"""What every native provider's params reader gets and gives."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.config.keys import ConfigError
from app.config.provider_kind import ProviderKind
from app.config.values import as_opt_str


@dataclass(frozen=True, slots=True)
class ParamsContext:
    """What a reader gets: the entry's ``litellm_params`` and where it is, for error messages."""

    params: Mapping[str, Any]
    where: str  # "model_list[3].litellm_params"
    upstream_model: str  # the part of ``model`` after the prefix
    api_base: str | None
    api_key: str | None
    env: Mapping[str, str] = field(repr=False)
    base_dir: Path = Path(".")


@dataclass(frozen=True, slots=True)
class ResolvedProvider:
    base_url: str | None  # where calls go, without a trailing slash (None: the provider's own default)
    api_key: str | None = field(default=None, repr=False)
    params: Any = None  # the provider's typed params
    secrets: tuple[str, ...] = field(default=(), repr=False)  # values never to be echoed (beyond api_key)


@dataclass(frozen=True, slots=True)
class NativeProvider:
    kind: ProviderKind
    keys: frozenset[str]  # litellm_params keys it reads; not sent upstream as request parameters
    read: Callable[[ParamsContext], ResolvedProvider]


def key_from(ctx: ParamsContext, variable: str) -> str | None:
    """``api_key``, else the provider's environment variable, as LiteLLM reads it."""
    return ctx.api_key or ctx.env.get(variable) or None


_HOST_LABEL = re.compile(r"[a-z0-9-]+")


def first_named(ctx: ParamsContext, params: tuple[str, ...], variables: tuple[str, ...]) -> tuple[str, str | None]:
    """The first value given, and where it came from (``<where>.<key>`` or the variable's name), for
    the error that names it; the first param's key when none is given."""
    for name in params:
        value = as_opt_str(ctx.params.get(name), f"{ctx.where}.{name}")
        if value:
            return f"{ctx.where}.{name}", value
    for variable in variables:
        if ctx.env.get(variable):
            return variable, ctx.env[variable]
    return f"{ctx.where}.{params[0]}", None


def host_label(value: str, named: str, example: str) -> str:
    """A region or location goes into a hostname: ``evil.example/`` would send the call and its
    credentials elsewhere, so only lower-case letters, digits and '-' are taken."""
    if not _HOST_LABEL.fullmatch(value):
        raise ConfigError(f"{named}: {value[:40]!r} goes into a hostname: lower-case letters, digits and '-' "
                          f"only (like {example!r})")
    return value
