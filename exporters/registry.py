"""Destination names -> typed settings and exporter factories; resolved once, at config or API time.

``"callback_name": "langfuse"`` is fine at the API edge; past this module nothing compares
callback names. The registry is an immutable value built by ``builtin_registry()``, not a global.

``DestinationType.spool`` says whether the delivery layer writes the type's spans to its SQLite
spool before they count as accepted. Remote destinations (``otel``, ``langfuse``) need it: the
spool is what carries spans across an outage and a restart. Local ones (``file``, ``console``)
do not: the file is itself the durable log, and a spool in front of it doubles the writes (and
costs ~0.2 ms of CPU per request at the bench: encode, commit, read, ack). Their spans wait in
memory, for up to one batch delay (0.2 s by default), before the exporter writes them; a kill -9
loses at most what arrived in that window, and a clean shutdown flushes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from exporters import (
    athina,
    console,
    datadog_logs,
    dynamodb,
    file,
    generic,
    langfuse,
    langsmith,
    openmeter,
    otlp,
    otlp_backend,
    s3,
    sentry_events,
)
from exporters.plugin import BuildContext, DestinationType, GlobalInputs, UnknownDestination

__all__ = ["BuildContext", "DestinationRegistry", "DestinationType", "GlobalInputs", "UnknownDestination",
           "builtin_registry", "registry_of"]

# One line per destination module: adding a destination is its module, its tests and a line here.
_MODULES = (
    file,
    console,
    otlp,
    langfuse,
    openmeter,
    generic,
    athina,
    datadog_logs,
    sentry_events,
    langsmith,
    otlp_backend,
    s3,
    dynamodb,
)


@dataclass(frozen=True)
class DestinationRegistry:
    types: Mapping[str, DestinationType]  # every name and alias -> its type

    def get(self, name: str) -> DestinationType:
        kind = self.types.get(name)
        if kind is None:
            raise UnknownDestination(f"unknown callback {name!r}; supported: {', '.join(self.names)}")
        return kind

    @property
    def names(self) -> list[str]:
        return sorted(self.types)

    @property
    def team_names(self) -> list[str]:
        return sorted(n for n, t in self.types.items() if t.team_configurable)

    @property
    def settings_keys(self) -> frozenset[str]:
        return frozenset(k for t in self.types.values() for k in t.settings_keys)


def builtin_registry() -> DestinationRegistry:
    return registry_of(_MODULES)


def registry_of(modules: Iterable[Any]) -> DestinationRegistry:
    """The registry of the destinations ``modules`` declare (each has a ``DESTINATIONS`` tuple)."""
    types: dict[str, DestinationType] = {}
    for module in modules:
        for kind in module.DESTINATIONS:
            for name in (kind.name, *kind.aliases):
                if name in types:
                    raise ValueError(f"destination name {name!r} is declared twice")
                types[name] = kind
    return DestinationRegistry(types)
