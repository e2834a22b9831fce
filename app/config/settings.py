"""LiteLLM-style ``config.yaml``, resolved once at start-up into typed, frozen settings.

``os.environ/NAME`` references are resolved here and nowhere else; a bad value raises
``ConfigError`` whose message names the key path and what is allowed. Unknown keys are warnings
with a did-you-mean, except likely misspellings of the keys that guard calls (``app.config.keys``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.config.keys import (
    CONNECTION_KEYS,
    KNOWN_GENERAL,
    KNOWN_LITELLM,
    KNOWN_SPANGATE,
    KNOWN_TOP,
    ConfigError,
    misspelt_params,
    unknown_keys,
)
from app.config.provider_kind import ProviderKind
from app.config.wire_values import check_wire_values, proxy_url
from exporters.registry import builtin_registry
from exporters.transport.urlpolicy import CallbackPolicy

ENV_PREFIX = "os.environ/"
DEFAULT_TIMEOUT = 600.0
DEFAULT_MAX_BODY = 10 * 1024 * 1024
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_SSE_EVENT_BYTES = 1024 * 1024
DEFAULT_POOL_WAIT = 2.0

_TEAM_KEYS = frozenset({"team_id", "success_callback", "failure_callback", "callbacks", "turn_off_message_logging"})
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True, slots=True)
class MetricsAuth:
    """Who may scrape ``/metrics``: anyone, or the master key and, if set, a scrape token."""

    open: bool = False
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class UpstreamPoolConfig:
    """The deployments' connection pool (``spangate_settings.upstream_*``). A cap per origin, so
    calls held open by one slow upstream leave slots for the others (1,000 held streams to one model
    made every other model wait for its timeout); a short wait for a slot, after which the call is a
    503 saying the upstream was not contacted. Moderation has a pool of its own, ``max_per_origin``
    connections, so neither can starve the other."""

    max_connections: int = 1000
    max_per_origin: int = 500
    wait_seconds: float = DEFAULT_POOL_WAIT


@dataclass(frozen=True, slots=True)
class DeploymentConfig:
    model_name: str
    provider: str  # prefix of litellm_params.model: openai, azure, mock, or a name _provider_base accepts
    upstream_model: str
    deployment_id: str
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_version: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    default_params: Mapping[str, Any] = field(default_factory=dict)
    model_info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> ProviderKind:
        return ProviderKind.of(self.provider)


@dataclass(frozen=True, slots=True)
class TeamSettingsConfig:
    """One ``litellm_settings.default_team_settings`` entry: callbacks and their vars for a team."""

    team_id: str
    success_callback: tuple[str, ...] = ()
    failure_callback: tuple[str, ...] = ()
    callback_vars: Mapping[str, Any] = field(default_factory=dict, repr=False)
    turn_off_message_logging: bool | None = None


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    deployments: tuple[DeploymentConfig, ...]
    success_callback: tuple[str, ...] = ()
    failure_callback: tuple[str, ...] = ()
    turn_off_message_logging: bool = False
    callback_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)  # *_params
    callback_keys: Mapping[str, Any] = field(default_factory=dict, repr=False)  # destinations' plain keys
    default_team_settings: tuple[TeamSettingsConfig, ...] = ()
    master_key: str | None = field(default=None, repr=False)
    database_url: str | None = field(default=None, repr=False)
    max_request_body_bytes: int = DEFAULT_MAX_BODY
    environment_variables: Mapping[str, str] = field(default_factory=dict, repr=False)
    data_dir: Path = Path("spangate-data")
    span_log_path: Path | None = None
    durable_delivery: bool = True
    spool_max_bytes: int = 1 << 30
    delivery_workers: int = 8
    shutdown_flush_seconds: float = 10.0
    delivery_failing_log_seconds: float = 300.0  # a failing destination's "still failing" line, this often
    delivery_linger_seconds: float = 0.2  # a quiet destination waits this long for more (DeliveryConfig.batch_delay)
    team_poll_seconds: float = 0.5
    upstream_proxy: str | None = field(default=None, repr=False)  # None: HTTP(S)_PROXY; "direct": none
    upstream_pool: UpstreamPoolConfig = field(default_factory=UpstreamPoolConfig)
    header_read_timeout_seconds: float = 10.0
    max_connections_per_worker: int = 2048
    max_upstream_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_sse_event_bytes: int = DEFAULT_MAX_SSE_EVENT_BYTES
    allow_mock_response: bool = False  # honour a client's mock_response on real models (LiteLLM does)
    callback_policy: CallbackPolicy = field(default_factory=CallbackPolicy)  # where API-set callbacks may connect
    allow_unauthenticated: bool = False  # serve off loopback with no master key (the operator said so)
    metrics_auth: MetricsAuth = field(default_factory=MetricsAuth)
    # ``litellm_settings.callbacks`` entries that act on calls rather than receive spans, in order:
    # built-in hooks (``HOOK_NAMES``) and users' ``module.attribute`` objects (app.server.hook_setup).
    hooks: tuple[str, ...] = ()
    config_dir: Path | None = None  # where ``module.attribute`` callbacks are imported from
    redact_headers: frozenset[str] = frozenset()  # header names masked wherever headers are logged
    warnings: tuple[str, ...] = ()

    @property
    def model_names(self) -> list[str]:
        return list(dict.fromkeys(d.model_name for d in self.deployments))

    @property
    def resolved_span_log_path(self) -> Path:
        return self.span_log_path or self.data_dir / "spans.jsonl"


def default_config(data_dir: Path | None = None) -> GatewayConfig:
    """The embedded defaults: two mock models, spans to a local JSON-lines file and the console."""
    mocks = (
        DeploymentConfig("mock-gpt", "mock", "mock-gpt", "mock-gpt-0"),
        DeploymentConfig("mock-embedding", "mock", "mock-embedding", "mock-embedding-0"),
    )
    return GatewayConfig(deployments=mocks, success_callback=("file", "console"),
                         failure_callback=("file", "console"), data_dir=data_dir or Path("spangate-data"))


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    return parse_config(raw, environ=os.environ if environ is None else environ, base_dir=path.parent)


def parse_config(raw: Any, *, environ: Mapping[str, str], base_dir: Path = Path(".")) -> GatewayConfig:
    """Turn the YAML document into ``GatewayConfig``. Env references see ``environment_variables`` too."""
    top = _mapping(raw, "config")
    warnings = unknown_keys(top, KNOWN_TOP, "")
    env_vars = {str(k): str(v) for k, v in _mapping(top.get("environment_variables") or {},
                                                    "environment_variables").items()}
    env = {**environ, **env_vars}
    top = _resolve_env(top, env, "")
    litellm = _mapping(top.get("litellm_settings") or {}, "litellm_settings")
    general = _mapping(top.get("general_settings") or {}, "general_settings")
    spangate = _mapping(top.get("spangate_settings") or {}, "spangate_settings")
    # Destinations' own sections (``s3_callback_params``, ``azure_content_safety_params``) are read by
    # the destination that declares one; the registry says which are known (check_destinations).
    callback_settings = {str(k): v for k, v in litellm.items() if str(k).endswith("_params")}
    # ... and the plain keys a destination declares (``dynamodb_table_name``), as LiteLLM spells them.
    callback_keys = {str(k): v for k, v in litellm.items() if k in builtin_registry().settings_keys}
    plain = {k: v for k, v in litellm.items() if k not in callback_settings and k not in callback_keys}
    warnings += unknown_keys(plain, KNOWN_LITELLM, "litellm_settings.")
    warnings += unknown_keys(general, KNOWN_GENERAL, "general_settings.")
    warnings += unknown_keys(spangate, KNOWN_SPANGATE, "spangate_settings.")
    both = _names(litellm.get("callbacks"), "litellm_settings.callbacks")
    hooks = tuple(name for name in both if is_hook_name(name))
    both = tuple(name for name in both if not is_hook_name(name))
    data_dir = _path(spangate.get("data_dir"), "spangate_settings.data_dir", base_dir) or base_dir / "spangate-data"
    return GatewayConfig(
        deployments=_deployments(top.get("model_list"), litellm.get("request_timeout")),
        success_callback=_dedupe(_names(litellm.get("success_callback"), "litellm_settings.success_callback") + both),
        failure_callback=_dedupe(_names(litellm.get("failure_callback"), "litellm_settings.failure_callback") + both),
        callback_settings={k: _mapping(v, f"litellm_settings.{k}") for k, v in callback_settings.items()},
        callback_keys=callback_keys,
        turn_off_message_logging=_bool(litellm.get("turn_off_message_logging", False),
                                       "litellm_settings.turn_off_message_logging"),
        default_team_settings=_team_settings(litellm.get("default_team_settings")),
        master_key=_opt_str(general.get("master_key"), "general_settings.master_key"),
        database_url=_opt_str(general.get("database_url") or env.get("DATABASE_URL"), "general_settings.database_url"),
        max_request_body_bytes=_int(general.get("max_request_body_bytes", DEFAULT_MAX_BODY),
                                    "general_settings.max_request_body_bytes", minimum=1024),
        environment_variables=env_vars,
        data_dir=data_dir,
        span_log_path=_path(spangate.get("span_log_path"), "spangate_settings.span_log_path", base_dir),
        durable_delivery=_bool(spangate.get("durable_delivery", True), "spangate_settings.durable_delivery"),
        spool_max_bytes=_int(spangate.get("spool_max_bytes", 1 << 30), "spangate_settings.spool_max_bytes", minimum=1),
        delivery_workers=_int(spangate.get("delivery_workers", 8), "spangate_settings.delivery_workers", minimum=1),
        shutdown_flush_seconds=_float(spangate.get("shutdown_flush_seconds", 10.0),
                                      "spangate_settings.shutdown_flush_seconds"),
        delivery_failing_log_seconds=_positive(spangate.get("delivery_failing_log_seconds", 300.0),
                                               "spangate_settings.delivery_failing_log_seconds"),
        delivery_linger_seconds=_linger(spangate.get("delivery_linger_seconds", 0.2)),
        team_poll_seconds=_float(spangate.get("team_poll_seconds", 0.5), "spangate_settings.team_poll_seconds"),
        upstream_proxy=proxy_url(spangate.get("upstream_proxy"), "spangate_settings.upstream_proxy"),
        upstream_pool=_upstream_pool(spangate),
        header_read_timeout_seconds=_positive(spangate.get("header_read_timeout_seconds", 10.0),
                                              "spangate_settings.header_read_timeout_seconds"),
        max_connections_per_worker=_int(spangate.get("max_connections_per_worker", 2048),
                                        "spangate_settings.max_connections_per_worker", minimum=1),
        max_upstream_response_bytes=_int(spangate.get("max_upstream_response_bytes", DEFAULT_MAX_RESPONSE_BYTES),
                                         "spangate_settings.max_upstream_response_bytes", minimum=1024),
        max_sse_event_bytes=_int(spangate.get("max_sse_event_bytes", DEFAULT_MAX_SSE_EVENT_BYTES),
                                 "spangate_settings.max_sse_event_bytes", minimum=1024),
        allow_mock_response=_bool(spangate.get("allow_mock_response", False), "spangate_settings.allow_mock_response"),
        callback_policy=_callback_policy(spangate.get("callback_allowed_hosts")),
        allow_unauthenticated=_bool(spangate.get("allow_unauthenticated", False),
                                    "spangate_settings.allow_unauthenticated"),
        metrics_auth=_metrics_auth(spangate.get("metrics_auth", "master_key")),
        hooks=hooks,
        config_dir=base_dir,
        redact_headers=frozenset(h.lower() for h in _names(spangate.get("redact_headers"),
                                                             "spangate_settings.redact_headers")),
        warnings=tuple(warnings + misspelt_params(top["model_list"])),
    )


# --- pieces -------------------------------------------------------------------------------------


def _callback_policy(raw: Any) -> CallbackPolicy:
    where = "spangate_settings.callback_allowed_hosts"
    try:
        return CallbackPolicy.from_allowed_hosts(_names(raw, where))
    except ValueError as exc:
        raise ConfigError(f"{exc}; expected host names, *.domain wildcards or CIDRs such as 10.0.0.0/8") from None


def _metrics_auth(raw: Any) -> MetricsAuth:
    value = _str(raw, "spangate_settings.metrics_auth")
    if value in ("none", "master_key"):
        return MetricsAuth(open=value == "none")
    if len(value) < MIN_TOKEN_LENGTH:  # also what a misspelt "master-key" or "None" would become
        raise ConfigError(f"spangate_settings.metrics_auth: expected none, master_key, or a scrape token of at least "
                          f"{MIN_TOKEN_LENGTH} characters")
    return MetricsAuth(token=value)


def _deployments(raw: Any, request_timeout: Any) -> tuple[DeploymentConfig, ...]:
    if raw is None:
        raise ConfigError("model_list: required; give at least one entry with model_name and litellm_params.model")
    items = _list(raw, "model_list")
    if not items:
        raise ConfigError("model_list: must list at least one model")
    default_timeout = DEFAULT_TIMEOUT if request_timeout is None else _float(request_timeout,
                                                                            "litellm_settings.request_timeout")
    counters: dict[str, itertools.count[int]] = {}
    return tuple(_deployment(item, f"model_list[{i}]", default_timeout, counters) for i, item in enumerate(items))


def _deployment(raw: Any, where: str, default_timeout: float,
                counters: dict[str, itertools.count[int]]) -> DeploymentConfig:
    entry = _mapping(raw, where)
    name = _str(entry.get("model_name"), f"{where}.model_name")
    params = dict(_mapping(entry.get("litellm_params"), f"{where}.litellm_params"))
    model = _str(params.get("model"), f"{where}.litellm_params.model")
    provider, _, upstream_model = model.partition("/")
    if not upstream_model:
        provider, upstream_model = "openai", model
    api_base = _opt_str(params.get("api_base") or params.get("base_url"), f"{where}.litellm_params.api_base")
    api_base = _provider_base(provider, api_base, f"{where}.litellm_params.model")
    model_info = dict(_mapping(entry.get("model_info") or {}, f"{where}.model_info"))
    for price_key in ("input_cost_per_token", "output_cost_per_token"):
        if price_key in params:  # LiteLLM accepts prices in litellm_params too
            model_info.setdefault(price_key, params[price_key])
        if price_key in model_info:
            _float(model_info[price_key], f"{where}.model_info.{price_key}")
    index = next(counters.setdefault(name, itertools.count()))
    headers = params.get("extra_headers") or params.get("headers") or {}
    azure = ProviderKind.of(provider) is ProviderKind.AZURE
    check_wire_values(params, headers, upstream_model if azure else None, where)
    return DeploymentConfig(
        model_name=name,
        provider=provider,
        upstream_model=upstream_model,
        deployment_id=str(model_info.get("id") or f"{name}-{index}"),
        api_base=api_base,
        api_key=_opt_str(params.get("api_key"), f"{where}.litellm_params.api_key"),
        api_version=_opt_str(params.get("api_version"), f"{where}.litellm_params.api_version"),
        timeout=_float(params.get("timeout", default_timeout), f"{where}.litellm_params.timeout"),
        headers={str(k): str(v) for k, v in _mapping(headers, f"{where}.litellm_params.extra_headers").items()},
        default_params={k: v for k, v in params.items() if k not in CONNECTION_KEYS},
        model_info=model_info,
    )


# Provider prefixes served over OpenAI's wire format, with the base URL each documents. A prefix
# whose deployment gives no api_base is sent to this host, and only to it: a key written for one
# provider is never sent toward another's (an unknown prefix once fell back to api.openai.com).
OPENAI_COMPATIBLE_BASES: dict[str, str] = {
    "groq": "https://api.groq.com/openai/v1",
    "mistral": "https://api.mistral.ai/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "together_ai": "https://api.together.xyz/v1",
    "fireworks_ai": "https://api.fireworks.ai/inference/v1",
    "perplexity": "https://api.perplexity.ai",
    "openrouter": "https://openrouter.ai/api/v1",
    "xai": "https://api.x.ai/v1",
    "deepinfra": "https://api.deepinfra.com/v1/openai",
    "cerebras": "https://api.cerebras.ai/v1",
}
# OpenAI's wire format on a host only the deployment can name (LiteLLM's names for a self-hosted server).
_NEEDS_API_BASE = frozenset({"azure", "hosted_vllm", "openai_like", "custom_openai", "lm_studio", "llamafile"})
# Served as they are: OpenAI itself (its own host when no api_base is given) and the built-in mock.
_SELF_SERVED = frozenset({"openai", "text-completion-openai", "mock"})


def _provider_base(provider: str, api_base: str | None, where: str) -> str | None:
    """The base URL a deployment's calls go to, or a ``ConfigError`` for a prefix the gateway does not
    speak: such an entry is never guessed to be OpenAI-compatible, since its key would go to OpenAI."""
    if provider in _SELF_SERVED:
        return api_base
    if provider in OPENAI_COMPATIBLE_BASES:
        return api_base or OPENAI_COMPATIBLE_BASES[provider]
    if provider in _NEEDS_API_BASE:
        if not api_base:
            raise ConfigError(f"{where.removesuffix('.model')}.api_base: required for {provider}/ deployments")
        return api_base
    raise ConfigError(f"{where}: provider {_clip(provider)!r} is not supported (supported: "
                      f"{', '.join(sorted(_SELF_SERVED | _NEEDS_API_BASE | set(OPENAI_COMPATIBLE_BASES)))}); "
                      "openai/<model> with an api_base serves any OpenAI-compatible server")


def _clip(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _team_settings(raw: Any) -> tuple[TeamSettingsConfig, ...]:
    if raw is None:
        return ()
    out = []
    for i, item in enumerate(_list(raw, "litellm_settings.default_team_settings")):
        where = f"litellm_settings.default_team_settings[{i}]"
        entry = _mapping(item, where)
        both = _names(entry.get("callbacks"), f"{where}.callbacks")
        logging_off = entry.get("turn_off_message_logging")
        out.append(TeamSettingsConfig(
            team_id=_str(entry.get("team_id"), f"{where}.team_id"),
            success_callback=_dedupe(_names(entry.get("success_callback"), f"{where}.success_callback") + both),
            failure_callback=_dedupe(_names(entry.get("failure_callback"), f"{where}.failure_callback") + both),
            callback_vars={k: v for k, v in entry.items() if k not in _TEAM_KEYS},
            turn_off_message_logging=None if logging_off is None else _bool(logging_off,
                                                                            f"{where}.turn_off_message_logging"),
        ))
    return tuple(out)


def _resolve_env(value: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX):]
        if name not in env:
            raise ConfigError(f"{where or 'config'}: environment variable {name} is not set "
                              f"(referenced as {value})")
        return env[name]
    if isinstance(value, Mapping):
        return {k: _resolve_env(v, env, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {_kind(value)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list, got {_kind(value)}")
    return value


def _names(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    items = _list(value, where)
    return tuple(_str(v, f"{where}[{i}]") for i, v in enumerate(items))


# Built-in call hooks named in ``litellm_settings.callbacks`` (not span destinations).
HOOK_NAMES = frozenset({"azure_content_safety"})


def is_hook_name(name: str) -> bool:
    """A call hook rather than a destination: a built-in hook, or a user's ``module.attribute``."""
    return name in HOOK_NAMES or ("." in name and not name.startswith(".") and not name.endswith("."))


def _dedupe(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string, got {_kind(value)}")
    return value


def _opt_str(value: Any, where: str) -> str | None:
    return None if value is None else _str(str(value) if isinstance(value, int | float) else value, where)


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise ConfigError(f"{where}: expected true or false, got {_kind(value)}")


def _float(value: Any, where: str) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a number, got {_kind(value)}") from None
    if result < 0:
        raise ConfigError(f"{where}: must not be negative, got {result}")
    return result


_MAX_LINGER = 30.0  # past this a quiet team's calls show up "much later", not "soon"


def _linger(value: Any) -> float:
    where = "spangate_settings.delivery_linger_seconds"
    result = _float(value, where)
    if result > _MAX_LINGER:
        raise ConfigError(f"{where}: at most {_MAX_LINGER:g} seconds, got {result:g}")
    return result


def _upstream_pool(spangate: Mapping[str, Any]) -> UpstreamPoolConfig:
    where = "spangate_settings.upstream_max_connections"
    total = _int(spangate.get("upstream_max_connections", 1000), where, minimum=1)
    per_origin = _int(spangate.get("upstream_max_connections_per_origin", max(1, total // 2)),
                      f"{where}_per_origin", minimum=1)
    if per_origin > total:
        raise ConfigError(f"{where}_per_origin: at most upstream_max_connections ({total}), got {per_origin}")
    wait = _positive(spangate.get("upstream_pool_wait_seconds", DEFAULT_POOL_WAIT),
                     "spangate_settings.upstream_pool_wait_seconds")
    return UpstreamPoolConfig(max_connections=total, max_per_origin=per_origin, wait_seconds=wait)


def _positive(value: Any, where: str) -> float:
    result = _float(value, where)
    if result == 0:
        raise ConfigError(f"{where}: must be more than 0 seconds")
    return result


def _int(value: Any, where: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{where}: expected a whole number >= {minimum}, got {_kind(value)}")
    try:
        result = int(value)
    except ValueError:
        raise ConfigError(f"{where}: expected a whole number >= {minimum}, got {value!r}") from None
    if result < minimum:
        raise ConfigError(f"{where}: expected a whole number >= {minimum}, got {result}")
    return result


def _path(value: Any, where: str, base_dir: Path) -> Path | None:
    if value is None:
        return None
    path = Path(_str(value, where)).expanduser()
    return path if path.is_absolute() else base_dir / path


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return type(value).__name__
