"""LazySpanExporter: built on first export, again after a failed build, never again once built."""

import logging

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from processors.delivery.lazy import LazySpanExporter


def test_builds_once_retries_a_failed_build_and_releases_the_factory() -> None:
    built: list[InMemorySpanExporter] = []

    def factory() -> InMemorySpanExporter:
        if not built:
            built.append(InMemorySpanExporter())
            raise RuntimeError("first build fails")
        built.append(InMemorySpanExporter())
        return built[-1]

    lazy = LazySpanExporter(factory, "team/t/langfuse/success", logging.getLogger("test"))
    assert lazy.export([]) is SpanExportResult.FAILURE
    assert lazy.last_failure is not None and lazy.built is None
    assert lazy.export([]) is SpanExportResult.SUCCESS
    assert lazy.export([]) is SpanExportResult.SUCCESS  # the same exporter, not a third build
    assert len(built) == 2 and lazy.built is built[1] and lazy.last_failure is None
    with pytest.raises(AssertionError):  # the factory (and what its closure held) is let go
        lazy._factory()
    lazy.shutdown()
    assert built[1]._stopped
