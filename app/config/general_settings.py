"""``general_settings``: who may call the gateway (``master_key``), its store, and the request size cap."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.config.values import as_bool, as_int, as_opt_str

DEFAULT_MAX_BODY = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class GeneralSettings:
    """The section as ``GatewayConfig`` holds it (fields of the same names; see there)."""

    master_key: str | None = field(repr=False)
    database_url: str | None = field(repr=False)
    max_request_body_bytes: int
    disable_spend_logs: bool = False  # LiteLLM's: no spend log row for calls by keys and teams without limits


def parse_general_settings(general: Mapping[str, Any], env: Mapping[str, str]) -> GeneralSettings:
    """``DATABASE_URL`` in the environment stands in for a ``database_url`` not given, as in LiteLLM."""
    return GeneralSettings(
        master_key=as_opt_str(general.get("master_key"), "general_settings.master_key"),
        database_url=as_opt_str(general.get("database_url") or env.get("DATABASE_URL"),
                                "general_settings.database_url"),
        max_request_body_bytes=as_int(general.get("max_request_body_bytes", DEFAULT_MAX_BODY),
                                      "general_settings.max_request_body_bytes", minimum=1024),
        disable_spend_logs=as_bool(general.get("disable_spend_logs", False), "general_settings.disable_spend_logs"),
    )
