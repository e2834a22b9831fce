"""Typed, validated settings for one OpenMeter instance (cloud or self-hosted).

A team's ``callback_vars`` and the global ``success_callback: ["openmeter"]`` form (its vars read
from the environment named in ``ENV_VARS`` by the config layer, never here) both go through
``from_vars``; every problem raises ``ValueError`` naming the var, so the admin API answers 400 and
start-up stops with a useful message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from exporters.plugin import check_vars, credential
from exporters.transport.urlpolicy import normalize_base_url

__all__ = ["ALLOWED_VARS", "DEFAULT_ENDPOINT", "DEFAULT_EVENT_TYPE", "ENV_VARS", "SECRET_VARS", "OpenMeterConfig"]

DEFAULT_ENDPOINT: Final = "https://openmeter.cloud"
DEFAULT_EVENT_TYPE: Final = "spangate_tokens"
EVENTS_PATH: Final = "/api/v1/events"
MAX_EVENT_TYPE = 256  # a meter's event type is a short name; a longer value is a pasted mistake

API_KEY_VAR: Final = "openmeter_api_key"
ENDPOINT_VAR: Final = "openmeter_api_endpoint"
EVENT_TYPE_VAR: Final = "openmeter_event_type"
ALLOWED_VARS: Final = (API_KEY_VAR, ENDPOINT_VAR, EVENT_TYPE_VAR)
SECRET_VARS: Final = frozenset({API_KEY_VAR})
ENV_VARS: Final = {
    API_KEY_VAR: "OPENMETER_API_KEY",
    ENDPOINT_VAR: "OPENMETER_API_ENDPOINT",
    EVENT_TYPE_VAR: "OPENMETER_EVENT_TYPE",
}


@dataclass(frozen=True, slots=True)
class OpenMeterConfig:
    """API key, endpoint and CloudEvents ``type`` of one destination; ``repr`` never shows the key."""

    api_key: str
    api_endpoint: str = DEFAULT_ENDPOINT
    event_type: str = DEFAULT_EVENT_TYPE

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_key", credential(API_KEY_VAR, self.api_key))
        object.__setattr__(self, "api_endpoint", normalize_base_url(self.api_endpoint, ENDPOINT_VAR))
        object.__setattr__(self, "event_type", _event_type(self.event_type))

    def __repr__(self) -> str:
        return (f"OpenMeterConfig(api_key='****', api_endpoint={self.api_endpoint!r}, "
                f"event_type={self.event_type!r})")

    @property
    def events_url(self) -> str:
        """OpenMeter's ingest endpoint (single events and batches alike)."""
        return self.api_endpoint + EVENTS_PATH

    @classmethod
    def from_vars(cls, vars: Mapping[str, Any]) -> OpenMeterConfig:
        check_vars("openmeter", vars, ALLOWED_VARS, (API_KEY_VAR,))
        endpoint, event_type = vars.get(ENDPOINT_VAR), vars.get(EVENT_TYPE_VAR)
        return cls(api_key=vars[API_KEY_VAR],
                   api_endpoint=DEFAULT_ENDPOINT if endpoint is None else endpoint,
                   event_type=DEFAULT_EVENT_TYPE if event_type is None else event_type)



def _event_type(value: Any) -> str:
    text = credential(EVENT_TYPE_VAR, value)
    if len(text) > MAX_EVENT_TYPE:
        raise ValueError(f"{EVENT_TYPE_VAR} must be at most {MAX_EVENT_TYPE} characters")
    return text
