"""app/routing.py: the builder opens each destination with its type's durability."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from app.config import default_config
from app.routing import RoutingBuilder, global_specs
from exporters.registry import BuildContext, builtin_registry


class RecordingSinks:
    def __init__(self) -> None:
        self.opened: dict[str, bool | None] = {}

    def open(self, key: str, *, team: str | None, name: str, factory: Any, durable: bool | None = None) -> Any:
        self.opened[key] = durable
        return object()

    def close(self, key: str) -> None:
        self.opened.pop(key, None)


def test_local_destinations_are_opened_without_the_spool_remote_ones_with_it(tmp_path: Path) -> None:
    registry = builtin_registry()
    with httpx.Client() as client:
        ctx = BuildContext(http_client=client, span_log_path=tmp_path / "spans.jsonl", console=io.StringIO())
        config = replace(default_config(tmp_path), success_callback=("file", "console", "otel"))
        specs = global_specs(config, registry, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, ctx)
        sinks = RecordingSinks()
        RoutingBuilder(sinks, ctx).build(specs, {}, frozenset(), 1)
    assert sinks.opened == {"global/file": False, "global/console": False, "global/otel": True}


def test_registry_spools_every_type_but_the_local_ones() -> None:
    registry = builtin_registry()
    assert {name: registry.get(name).spool for name in registry.names} == {
        "console": False, "file": False, "langfuse": True, "otel": True, "traceloop": True, "s3": True,
        "dynamodb": True,
    }
