"""Why the gateway failed to start, sent to the failure destinations that take such alerts (Sentry), before exit.

The process is about to exit, so nothing can wait in a queue: each alert is sent at once on a client of
its own, with a short timeout, and a destination that does not answer in time only costs a warning
line. Destinations whose own settings are what failed are skipped (with the reason logged).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import httpx

from app.config.settings import GatewayConfig
from app.teams.routing import global_config
from app.wire.egress import client_mounts
from exporters.registry import BuildContext, builtin_registry

log = logging.getLogger("spangate")
TIMEOUT_SECONDS = 3.0  # per destination: an alert must not hold up a failed start for long


def send_startup_alerts(config: GatewayConfig, env: Mapping[str, str], error_type: str, message: str) -> int:
    """Alert each ``failure_callback`` destination that supports it; returns how many accepted."""
    registry = builtin_registry()
    kinds = {name: registry.types[name] for name in config.failure_callback
             if name in registry.types and registry.types[name].startup_alert is not None}
    if not kinds:
        return 0
    limits = httpx.Limits(max_connections=4)
    sent = 0
    with httpx.Client(timeout=TIMEOUT_SECONDS, trust_env=False, limits=limits,
                      mounts=client_mounts(config.upstream_proxy, limits)) as client:
        ctx = BuildContext(http_client=client, span_log_path=config.resolved_span_log_path)
        for name, kind in kinds.items():
            try:
                reason = kind.startup_alert(global_config(kind, config, env, ctx), ctx, error_type, message)
            except ValueError as exc:
                reason = str(exc)
            if reason is None:
                sent += 1
            else:
                log.warning("start-up failure not reported to %s: %s", name, reason)
    return sent
