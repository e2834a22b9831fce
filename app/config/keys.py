"""Which ``config.yaml`` keys Spangate reads, and what it says about the ones it does not.

An unknown key is a warning with a did-you-mean, so a LiteLLM config with options Spangate does not
use still starts. A likely misspelling of a key that guards or records calls (``master_ky``) stops
start-up instead: ignored, it would start a gateway with no authentication, or no span log, in silence.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any


class ConfigError(ValueError):
    """A configuration value that stops start-up; the message names the key path."""


# Keys of litellm_params that configure the connection; every other key is a default request param.
CONNECTION_KEYS = frozenset({
    "model", "api_base", "base_url", "api_key", "api_version", "timeout", "stream_timeout",
    "max_retries", "organization", "headers", "extra_headers", "rpm", "tpm", "weight",
    "input_cost_per_token", "output_cost_per_token",
})
KNOWN_TOP = frozenset({
    "model_list", "litellm_settings", "general_settings", "environment_variables", "spangate_settings",
    "router_settings",
})
KNOWN_LITELLM = frozenset({
    "success_callback", "failure_callback", "callbacks", "turn_off_message_logging",
    "default_team_settings", "drop_params", "set_verbose", "request_timeout",
})
# Plain litellm_settings keys a destination reads (its ``DestinationType.settings_keys``), as LiteLLM
# spells them. Written here, not asked of the registry, so that reading YAML loads no destination
# (the registry imports boto3, sentry-sdk and the Datadog client); tests/app/config holds the two equal.
DESTINATION_KEYS = frozenset({"dynamodb_table_name"})
KNOWN_GENERAL = frozenset({"master_key", "database_url", "max_request_body_bytes", "disable_spend_logs"})
KNOWN_SPANGATE = frozenset({
    "data_dir", "span_log_path", "durable_delivery", "spool_max_bytes", "delivery_workers",
    "shutdown_flush_seconds", "delivery_failing_log_seconds", "delivery_linger_seconds",
    "delivery_linger_max_seconds", "team_poll_seconds",
    "upstream_proxy", "upstream_max_connections", "upstream_max_connections_per_origin", "upstream_pool_wait_seconds",
    "header_read_timeout_seconds",
    "max_connections_per_worker", "max_upstream_response_bytes", "max_sse_event_bytes", "allow_mock_response",
    "callback_allowed_hosts", "allow_unauthenticated", "metrics_auth", "redact_headers", "legacy_genai_metrics",
    "dead_letter_retention", "dead_letters_per_destination",
    "limits_backend", "limits_on_backend_failure", "redis_key_prefix",
})
# Ignoring a misspelling of these loses authentication, the store, or every span: refuse to start.
# Each with the section it belongs to, since one put in another section would be ignored just the same.
CRITICAL_HOME = {"master_key": "general_settings", "database_url": "general_settings",
                 "success_callback": "litellm_settings", "failure_callback": "litellm_settings",
                 "callbacks": "litellm_settings"}
CRITICAL = frozenset(CRITICAL_HOME)
SUGGEST_CUTOFF = 0.82  # server_settings scores 0.80 against router_settings, api_bsae 0.88 against api_base
STOP_CUTOFF = 0.85  # master_ky 0.95, success_callbacks 0.97, callback 0.94, database_uri 0.92


def unknown_keys(section: Mapping[Any, Any], known: frozenset[str], prefix: str) -> list[str]:
    """Warnings for keys not in ``known``; ConfigError for a likely misspelling of a critical key."""
    warnings = []
    for key in section:
        if key in known:
            continue
        guess, score = closest(str(key), known)
        if guess in CRITICAL and score >= STOP_CUTOFF:
            raise ConfigError(f"{prefix}{key}: unknown key; did you mean {guess}? Spangate will not start with "
                              f"{guess} possibly misspelt, as ignoring it would leave it unset")
        misplaced, score = closest(str(key), CRITICAL)
        if misplaced is not None and score >= STOP_CUTOFF:
            raise ConfigError(f"{prefix}{key}: unknown key here; {misplaced} belongs under "
                              f"{CRITICAL_HOME[misplaced]}, and Spangate will not start with it ignored")
        hint = f"; did you mean {guess}?" if guess else ", ignored"
        warnings.append(f"{prefix}{key}: unknown key{hint}")
    return warnings


def is_destination_key(key: Any) -> bool:
    """A destination's own litellm_settings entry: its section (``s3_callback_params``, read by the
    destination that declares it) or a plain key it declares; neither is an unknown key."""
    return str(key).endswith("_params") or key in DESTINATION_KEYS


def misspelt_params(model_list: Iterable[Any], provider_keys: frozenset[str] = frozenset()) -> list[str]:
    """litellm_params keys that look like a connection setting: they would be sent upstream as request params.
    ``provider_keys``: the keys native providers read (``app.config.providers``), settings too."""
    warnings = []
    for i, entry in enumerate(model_list):
        for key in entry["litellm_params"]:
            if key in CONNECTION_KEYS or key in provider_keys:
                continue
            guess, _ = closest(str(key), CONNECTION_KEYS)
            if guess:
                warnings.append(f"model_list[{i}].litellm_params.{key}: not a connection setting, so it is sent "
                                f"upstream as a request parameter; did you mean {guess}?")
    return warnings


def closest(key: str, known: Iterable[str]) -> tuple[str | None, float]:
    """The best known key for ``key`` (case, ``-`` and ``_`` aside) and its similarity, if it passes the cutoff."""
    norm = key.strip().lower().replace("-", "_")
    scored = [(difflib.SequenceMatcher(None, norm, k).ratio(), k) for k in sorted(known)]
    score, best = max(scored, default=(0.0, ""))
    return (best, score) if score >= SUGGEST_CUTOFF else (None, score)
