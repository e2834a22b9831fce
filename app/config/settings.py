"""LiteLLM-style ``config.yaml``, resolved once at start-up into typed, frozen settings.

``os.environ/NAME`` references are resolved once (``document``); a bad value raises
``ConfigError`` whose message names the key path and what is allowed. Unknown keys are warnings
with a did-you-mean, except likely misspellings of the keys that guard calls (``app.config.keys``).

Each section has its module and its struct: the top level and ``environment_variables`` in
``document``, then ``model_list``, ``litellm_settings``, ``general_settings`` and
``spangate_settings``; of ``router_settings`` only the Redis keys (``limits_settings``), the rest accepted
and not read. ``GatewayConfig`` is their
fields side by side. Nothing here loads a destination: callback names are checked where
destinations are built (``app.server.factory.check_destinations``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from app.config.document import read_document
from app.config.general_settings import DEFAULT_MAX_BODY, parse_general_settings
from app.config.keys import ConfigError, misspelt_params
from app.config.limits_settings import LimitsConfig, parse_limits
from app.config.litellm_settings import TeamSettingsConfig, parse_litellm_settings
from app.config.model_list import DEFAULT_TIMEOUT, DeploymentConfig, parse_model_list
from app.config.providers import NATIVE_KEYS
from app.config.spangate_settings import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_SSE_EVENT_BYTES,
    DEFAULT_POOL_WAIT,
    MetricsAuth,
    UpstreamPoolConfig,
    parse_spangate_settings,
)
from exporters.transport.urlpolicy import CallbackPolicy

# What the rest of the gateway imports from here, wherever in app.config it is defined.
__all__ = ["DEFAULT_MAX_BODY", "DEFAULT_MAX_RESPONSE_BYTES", "DEFAULT_MAX_SSE_EVENT_BYTES", "DEFAULT_POOL_WAIT",
           "DEFAULT_TIMEOUT", "ConfigError", "DeploymentConfig", "GatewayConfig", "LimitsConfig", "MetricsAuth",
           "TeamSettingsConfig", "UpstreamPoolConfig", "default_config", "load_config", "parse_config"]


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
    disable_spend_logs: bool = False  # general_settings: no spend rows for callers without limits
    environment_variables: Mapping[str, str] = field(default_factory=dict, repr=False)
    data_dir: Path = Path("spangate-data")
    span_log_path: Path | None = None
    durable_delivery: bool = True
    spool_max_bytes: int = 1 << 30
    delivery_workers: int = 8
    shutdown_flush_seconds: float = 10.0
    delivery_failing_log_seconds: float = 300.0  # a failing destination's "still failing" line, this often
    delivery_linger_seconds: float = 0.2  # a batch waits this long for more spans (DeliveryConfig.batch_delay)
    delivery_linger_max_seconds: float = 1.5  # ... and a quiet destination's up to this (max_batch_delay)
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
    dead_letter_retention: float = 7 * 86400.0  # seconds a dead letter is kept (DeliveryConfig's)
    dead_letters_per_destination: int = 10_000  # and how many, oldest dropped first
    legacy_genai_metrics: bool = True  # the v1.41 GenAI metrics beside the current ones (spangate_settings)
    limits: LimitsConfig = field(default_factory=LimitsConfig)  # where budgets and rate limits are counted
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
    document = read_document(raw, environ)
    deployments = parse_model_list(document.top.get("model_list"), document.litellm.get("request_timeout"),
                                   document.env, base_dir)
    litellm = parse_litellm_settings(document.litellm)
    general = parse_general_settings(document.general, document.env)
    spangate = parse_spangate_settings(document.spangate, base_dir)
    limits = parse_limits(document.top.get("router_settings"), document.spangate, document.env)
    warnings = document.warnings + tuple(misspelt_params(document.top["model_list"], NATIVE_KEYS))
    return GatewayConfig(deployments=deployments, environment_variables=document.environment_variables,
                         config_dir=base_dir, warnings=warnings, limits=limits,
                         **_fields(litellm), **_fields(general), **_fields(spangate))


def _fields(section: Any) -> dict[str, Any]:
    """A section struct's values by name; not ``dataclasses.asdict``, which would copy nested structs into dicts."""
    return {f.name: getattr(section, f.name) for f in fields(section)}
