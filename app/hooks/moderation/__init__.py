"""Content moderation with Azure AI Content Safety: the ``azure_content_safety`` call hook.

    settings.py  the typed settings (global and per team), checked at start-up
    texts.py     what text a request and an answer carry; cutting long text for the service
    client.py    the ``text:analyze`` call; every failure to get a verdict is one ``ServiceMiss``
    hook.py      the hook: verdicts, 400/503 errors, span attributes, metrics
    guardrail.py each check as a guardrail span (apply_guardrail), a child of the call's
    stream.py    the two ways a stream is moderated (``stream_mode``)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from opentelemetry.metrics import Meter
from opentelemetry.trace import Tracer

from app.config.settings import GatewayConfig
from app.hooks.moderation.client import ContentSafetyClient
from app.hooks.moderation.guardrail import GuardrailSpans
from app.hooks.moderation.hook import (
    ContentSafetyHook,
    ModerationBlocked,
    ModerationInputTooLong,
    ModerationMetrics,
    ModerationUnavailable,
    ModerationUnreadable,
    TeamParams,
)
from app.hooks.moderation.settings import SECTION, WHERE, ContentSafetySettings, parse_settings, parse_team

__all__ = ["SECTION", "ContentSafetyHook", "ModerationBlocked", "ModerationInputTooLong", "ModerationUnavailable",
           "ModerationUnreadable", "build_content_safety", "check_config", "check_team_metadata"]


def check_config(config: GatewayConfig) -> ContentSafetySettings:
    """Every moderation setting of ``config`` (global and each team's), or ``ConfigError`` naming it."""
    settings = parse_settings(config.callback_settings.get(SECTION), WHERE)
    for entry in config.default_team_settings:
        raw = entry.callback_vars.get(SECTION)
        if raw is not None:
            parse_team(raw, f"litellm_settings.default_team_settings[team_id={entry.team_id}].{SECTION}")
    return settings


def check_team_metadata(metadata: Mapping[str, Any] | None) -> None:
    """A team's metadata as the admin API receives it: its override, if any, must parse (ConfigError)."""
    if metadata and metadata.get(SECTION) is not None:
        parse_team(metadata[SECTION], f"metadata.{SECTION}")


def build_content_safety(config: GatewayConfig, *, transport: httpx.AsyncBaseTransport, meter: Meter,
                         team_params: TeamParams | None, owns_transport: bool = False,
                         tracer: Tracer | None = None) -> ContentSafetyHook:
    """``transport``: the gateway's upstream transport (egress proxy, child spans); closed by the hook
    only when it ``owns_transport``. ``tracer``: the gateway's, for the checks' guardrail spans."""
    settings = check_config(config)
    return ContentSafetyHook(settings, ContentSafetyClient(settings, transport), ModerationMetrics(meter),
                             team_params=team_params, on_close=transport.aclose if owns_transport else None,
                             guardrails=GuardrailSpans(tracer, settings.endpoint))
