"""``model_list``: each entry a deployment, its provider prefix resolved to the base URL its calls go to.

Connection settings (``CONNECTION_KEYS``) are kept apart from the rest of ``litellm_params``, which
are default request params; values that reach the upstream wire are checked here (``wire_values``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.config.keys import CONNECTION_KEYS, ConfigError
from app.config.provider_kind import ProviderKind
from app.config.providers import NATIVE, ParamsContext, ResolvedProvider, hosts
from app.config.values import as_bool, as_float, as_list, as_mapping, as_opt_str, as_str
from app.config.wire_values import check_wire_values

DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True, slots=True)
class DeploymentConfig:
    model_name: str
    provider: str  # prefix of litellm_params.model: mock, a native kind, or one of app.config.providers.hosts
    upstream_model: str
    deployment_id: str
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_version: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    default_params: Mapping[str, Any] = field(default_factory=dict)
    model_info: Mapping[str, Any] = field(default_factory=dict)
    params: Any = None  # a native provider's typed params (app.config.providers), else None
    secrets: tuple[str, ...] = field(default=(), repr=False)  # a native provider's credentials beyond api_key

    @property
    def kind(self) -> ProviderKind:
        return ProviderKind.of(self.provider)


def parse_model_list(raw: Any, request_timeout: Any, env: Mapping[str, str] | None = None,
                     base_dir: Path = Path(".")) -> tuple[DeploymentConfig, ...]:
    """The deployments; ``request_timeout`` is ``litellm_settings.request_timeout``, every entry's default."""
    if raw is None:
        raise ConfigError("model_list: required; give at least one entry with model_name and litellm_params.model")
    items = as_list(raw, "model_list")
    if not items:
        raise ConfigError("model_list: must list at least one model")
    default_timeout = DEFAULT_TIMEOUT if request_timeout is None else as_float(request_timeout,
                                                                            "litellm_settings.request_timeout")
    counters: dict[str, itertools.count[int]] = {}
    env = {} if env is None else env
    return tuple(_deployment(item, f"model_list[{i}]", default_timeout, counters, env, base_dir)
                 for i, item in enumerate(items))


def _deployment(raw: Any, where: str, default_timeout: float, counters: dict[str, itertools.count[int]],
                env: Mapping[str, str], base_dir: Path) -> DeploymentConfig:
    entry = as_mapping(raw, where)
    name = as_str(entry.get("model_name"), f"{where}.model_name")
    params = dict(as_mapping(entry.get("litellm_params"), f"{where}.litellm_params"))
    model = as_str(params.get("model"), f"{where}.litellm_params.model")
    provider, _, upstream_model = model.partition("/")
    if not upstream_model:
        provider, upstream_model = "openai", model
    api_base = as_opt_str(params.get("api_base") or params.get("base_url"), f"{where}.litellm_params.api_base")
    api_key = as_opt_str(params.get("api_key"), f"{where}.litellm_params.api_key")
    native = NATIVE.get(ProviderKind.of(provider))
    ctx = ParamsContext(params, f"{where}.litellm_params", upstream_model, api_base, api_key, env, base_dir)
    api_version = as_opt_str(params.get("api_version"), f"{where}.litellm_params.api_version")
    if native is None:
        resolved, upstream_model, api_version = _openai_compatible(provider, ctx, api_version)
        own_keys: frozenset[str] = frozenset()
    else:
        resolved = native.read(ctx)
        own_keys = native.keys
    model_info = dict(as_mapping(entry.get("model_info") or {}, f"{where}.model_info"))
    for price_key in ("input_cost_per_token", "output_cost_per_token"):
        if price_key in params:  # LiteLLM accepts prices in litellm_params too
            model_info.setdefault(price_key, params[price_key])
        if price_key in model_info:
            as_float(model_info[price_key], f"{where}.model_info.{price_key}")
    if "supports_responses" in model_info:  # /v1/responses passed through to this host (openai_compat)
        model_info["supports_responses"] = as_bool(model_info["supports_responses"],
                                                   f"{where}.model_info.supports_responses")
    index = next(counters.setdefault(name, itertools.count()))
    headers = params.get("extra_headers") or params.get("headers") or {}
    azure = ProviderKind.of(provider) is ProviderKind.AZURE
    check_wire_values(params, headers, upstream_model if azure else None, where)
    return DeploymentConfig(
        model_name=name,
        provider=provider,
        upstream_model=upstream_model,
        deployment_id=str(model_info.get("id") or f"{name}-{index}"),
        api_base=resolved.base_url,
        api_key=resolved.api_key,
        api_version=api_version,
        timeout=as_float(params.get("timeout", default_timeout), f"{where}.litellm_params.timeout"),
        headers={str(k): str(v) for k, v in as_mapping(headers, f"{where}.litellm_params.extra_headers").items()},
        default_params={k: v for k, v in params.items() if k not in CONNECTION_KEYS and k not in own_keys},
        model_info=model_info,
        params=resolved.params,
        secrets=resolved.secrets,
    )


# The built-in mock, answered in the process: no host, no key.
_SELF_SERVED = frozenset({"mock"})
_NATIVE_PREFIXES = frozenset(kind.value for kind in NATIVE)  # spoken in their own API (app.config.providers)


def _openai_compatible(provider: str, ctx: ParamsContext,
                       api_version: str | None) -> tuple[ResolvedProvider, str, str | None]:
    """Where a deployment spoken to in OpenAI's wire format goes, its model id there and its API version;
    or a ``ConfigError`` for a prefix the gateway does not speak: such an entry is never guessed to be
    OpenAI-compatible, since its key would go to OpenAI."""
    if provider in _SELF_SERVED:
        return ResolvedProvider(ctx.api_base, ctx.api_key), ctx.upstream_model, api_version
    if provider in hosts.HOSTS:
        return (hosts.read(ctx, provider), hosts.upstream_model(provider, ctx.upstream_model),
                hosts.api_version(provider, api_version, ctx))
    supported = _SELF_SERVED | set(hosts.HOSTS) | _NATIVE_PREFIXES
    raise ConfigError(f"{ctx.where}.model: provider {_clip(provider)!r} is not supported (supported: "
                      f"{', '.join(sorted(supported))}); "
                      "openai/<model> with an api_base serves any OpenAI-compatible server")


def _clip(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
