"""``spangate_settings``: what LiteLLM has no key for: the span log and spool, delivery, the upstream
pool and proxy, the limits that bound one call, and who may reach ``/metrics`` and API-set callbacks."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.config.keys import ConfigError
from app.config.values import as_bool, as_float, as_int, as_names, as_path, as_positive, as_str, kind_of
from app.config.wire_values import proxy_url
from exporters.transport.urlpolicy import CallbackPolicy

DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_SSE_EVENT_BYTES = 1024 * 1024
DEFAULT_POOL_WAIT = 2.0
MIN_TOKEN_LENGTH = 16
_MAX_LINGER = 30.0  # past this a quiet team's calls show up "much later", not "soon"
# The longest a quiet destination's batch waits by default: a span reaches its destination within
# ~1.5 s (lag p99 1.5-1.8 s on a loaded box), and 300 teams at 290-500 calls/s send 450-630 export
# requests per 1,000 calls instead of 1,000 (bench/teams_scale.py, 8 Dec 2026).
DEFAULT_LINGER_MAX = 1.5
DEFAULT_DEAD_LETTER_RETENTION = 7 * 86400.0
# Dead letters per destination. A dead letter is a whole span (a few KB, up to the 1 Mi-character
# capture cap with its messages): 10,000 is a day of a team calling every ~9 s, replayed in 20
# batches, and at typical sizes tens of MB per destination, well inside spool_max_bytes.
DEFAULT_DEAD_LETTERS_PER_DESTINATION = 10_000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


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
class SpangateSettings:
    """The section as ``GatewayConfig`` holds it (fields of the same names; see there)."""

    data_dir: Path
    span_log_path: Path | None
    durable_delivery: bool
    spool_max_bytes: int
    delivery_workers: int
    shutdown_flush_seconds: float
    delivery_failing_log_seconds: float
    delivery_linger_seconds: float
    delivery_linger_max_seconds: float
    team_poll_seconds: float
    upstream_proxy: str | None = field(repr=False)
    upstream_pool: UpstreamPoolConfig
    header_read_timeout_seconds: float
    max_connections_per_worker: int
    max_upstream_response_bytes: int
    max_sse_event_bytes: int
    allow_mock_response: bool
    callback_policy: CallbackPolicy
    allow_unauthenticated: bool
    metrics_auth: MetricsAuth
    redact_headers: frozenset[str]
    dead_letter_retention: float
    dead_letters_per_destination: int
    # Also record the v1.41 GenAI metrics (gen_ai.client.token.usage, .operation.duration) beside the
    # current ones. On for this release: dashboards and alerts on the old names keep working while they
    # move, and the current names have no upstream release yet. It goes off by default next release.
    legacy_genai_metrics: bool


def parse_spangate_settings(spangate: Mapping[str, Any], base_dir: Path) -> SpangateSettings:
    """Paths are relative to the config file's folder (``base_dir``)."""
    s = "spangate_settings."
    return SpangateSettings(
        data_dir=as_path(spangate.get("data_dir"), f"{s}data_dir", base_dir) or base_dir / "spangate-data",
        span_log_path=as_path(spangate.get("span_log_path"), f"{s}span_log_path", base_dir),
        durable_delivery=as_bool(spangate.get("durable_delivery", True), f"{s}durable_delivery"),
        spool_max_bytes=as_int(spangate.get("spool_max_bytes", 1 << 30), f"{s}spool_max_bytes", minimum=1),
        delivery_workers=as_int(spangate.get("delivery_workers", 8), f"{s}delivery_workers", minimum=1),
        shutdown_flush_seconds=as_float(spangate.get("shutdown_flush_seconds", 10.0), f"{s}shutdown_flush_seconds"),
        delivery_failing_log_seconds=as_positive(spangate.get("delivery_failing_log_seconds", 300.0),
                                                 f"{s}delivery_failing_log_seconds"),
        **_lingers(spangate),
        team_poll_seconds=as_float(spangate.get("team_poll_seconds", 0.5), f"{s}team_poll_seconds"),
        upstream_proxy=proxy_url(spangate.get("upstream_proxy"), f"{s}upstream_proxy"),
        upstream_pool=_upstream_pool(spangate),
        header_read_timeout_seconds=as_positive(spangate.get("header_read_timeout_seconds", 10.0),
                                                f"{s}header_read_timeout_seconds"),
        max_connections_per_worker=as_int(spangate.get("max_connections_per_worker", 2048),
                                          f"{s}max_connections_per_worker", minimum=1),
        max_upstream_response_bytes=as_int(spangate.get("max_upstream_response_bytes", DEFAULT_MAX_RESPONSE_BYTES),
                                           f"{s}max_upstream_response_bytes", minimum=1024),
        max_sse_event_bytes=as_int(spangate.get("max_sse_event_bytes", DEFAULT_MAX_SSE_EVENT_BYTES),
                                   f"{s}max_sse_event_bytes", minimum=1024),
        allow_mock_response=as_bool(spangate.get("allow_mock_response", False), f"{s}allow_mock_response"),
        callback_policy=_callback_policy(spangate.get("callback_allowed_hosts")),
        allow_unauthenticated=as_bool(spangate.get("allow_unauthenticated", False), f"{s}allow_unauthenticated"),
        metrics_auth=_metrics_auth(spangate.get("metrics_auth", "master_key")),
        redact_headers=frozenset(h.lower() for h in as_names(spangate.get("redact_headers"), f"{s}redact_headers")),
        dead_letter_retention=duration(spangate.get("dead_letter_retention", DEFAULT_DEAD_LETTER_RETENTION),
                                       f"{s}dead_letter_retention"),
        dead_letters_per_destination=as_int(spangate.get("dead_letters_per_destination",
                                                         DEFAULT_DEAD_LETTERS_PER_DESTINATION),
                                            f"{s}dead_letters_per_destination", minimum=1),
        legacy_genai_metrics=as_bool(spangate.get("legacy_genai_metrics", True), f"{s}legacy_genai_metrics"),
    )


def duration(value: Any, where: str) -> float:
    """Seconds, as a number or a string with a unit: ``3600``, ``"90s"``, ``"30m"``, ``"12h"``, ``"7d"``, ``"2w"``."""
    if isinstance(value, str) and value.strip()[-1:].lower() in _UNITS:
        text = value.strip()
        try:
            seconds = float(text[:-1]) * _UNITS[text[-1].lower()]
        except ValueError:
            raise ConfigError(f"{where}: expected seconds or a duration such as 7d, 12h, 30m, got {value!r}") from None
    elif isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{where}: expected seconds or a duration such as 7d, 12h, 30m, got {kind_of(value)}")
    else:
        seconds = as_float(value, where)
    if not 0 < seconds < math.inf:  # NaN fails this too
        raise ConfigError(f"{where}: must be more than 0 seconds and finite, got {value!r}")
    return seconds


def _callback_policy(raw: Any) -> CallbackPolicy:
    where = "spangate_settings.callback_allowed_hosts"
    try:
        return CallbackPolicy.from_allowed_hosts(as_names(raw, where))
    except ValueError as exc:
        raise ConfigError(f"{exc}; expected host names, *.domain wildcards or CIDRs such as 10.0.0.0/8") from None


def _metrics_auth(raw: Any) -> MetricsAuth:
    value = as_str(raw, "spangate_settings.metrics_auth")
    if value in ("none", "master_key"):
        return MetricsAuth(open=value == "none")
    if len(value) < MIN_TOKEN_LENGTH:  # also what a misspelt "master-key" or "None" would become
        raise ConfigError(f"spangate_settings.metrics_auth: expected none, master_key, or a scrape token of at least "
                          f"{MIN_TOKEN_LENGTH} characters")
    return MetricsAuth(token=value)


def _linger(value: Any, where: str) -> float:
    result = as_float(value, where)
    if result > _MAX_LINGER:
        raise ConfigError(f"{where}: at most {_MAX_LINGER:g} seconds, got {result:g}")
    return result


def _lingers(spangate: Mapping[str, Any]) -> dict[str, float]:
    """The base linger and the longest a quiet destination's batch may wait. Unset, the longest is
    ``DEFAULT_LINGER_MAX`` (or the base, when that is longer: a config that chose a long linger keeps it)."""
    where = "spangate_settings.delivery_linger_seconds"
    base = _linger(spangate.get("delivery_linger_seconds", 0.2), where)
    raw = spangate.get("delivery_linger_max_seconds")
    longest = max(base, DEFAULT_LINGER_MAX) if raw is None else _linger(raw, where.replace("seconds", "max_seconds"))
    if longest < base:
        raise ConfigError(f"{where.replace('seconds', 'max_seconds')}: at least delivery_linger_seconds "
                          f"({base:g}), got {longest:g}")
    return {"delivery_linger_seconds": base, "delivery_linger_max_seconds": longest}


def _upstream_pool(spangate: Mapping[str, Any]) -> UpstreamPoolConfig:
    where = "spangate_settings.upstream_max_connections"
    total = as_int(spangate.get("upstream_max_connections", 1000), where, minimum=1)
    per_origin = as_int(spangate.get("upstream_max_connections_per_origin", max(1, total // 2)),
                        f"{where}_per_origin", minimum=1)
    if per_origin > total:
        raise ConfigError(f"{where}_per_origin: at most upstream_max_connections ({total}), got {per_origin}")
    wait = as_positive(spangate.get("upstream_pool_wait_seconds", DEFAULT_POOL_WAIT),
                       "spangate_settings.upstream_pool_wait_seconds")
    return UpstreamPoolConfig(max_connections=total, max_per_origin=per_origin, wait_seconds=wait)
