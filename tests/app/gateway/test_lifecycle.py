"""A call's end: one span end, one metric record and one round of hooks per call, whichever ends are asked for."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from app.calls.caller import Caller
from app.calls.operations import Operation
from app.calls.pricing import PriceBook
from app.calls.record import CallRecord
from app.config.settings import DeploymentConfig
from app.errors import InvalidRequest, UpstreamTimeout
from app.gateway.lifecycle import CallLifecycle
from app.hooks.chain import CallHook, HookChain
from contracts import semconv as sc

DEPLOYMENT = SimpleNamespace(config=DeploymentConfig("m", "openai", "m", "m-0"), provider_name=sc.PROVIDER_OPENAI,
                             server_address="127.0.0.1", server_port=9)


class Recorder(CallHook):
    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    async def on_success(self, call: CallRecord) -> None:
        self.seen.append(("success", None))

    async def on_failure(self, call: CallRecord) -> None:
        self.seen.append(("failure", call.error.error_type if call.error else None))


class Metrics:
    """Counts records; raises on the first ``fail_first`` of them (a bug inside the end)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.records: list[dict[str, Any]] = []
        self._fail = fail_first

    def record(self, labels: dict[str, Any], attrs: Any, duration: float, ttfc: float | None) -> None:
        if self._fail:
            self._fail -= 1
            raise ZeroDivisionError("a bug in a metric")
        self.records.append(labels)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    yield memory
    memory.shutdown()


def lifecycle(exporter: InMemorySpanExporter, hook: Recorder, metrics: Metrics) -> tuple[CallLifecycle, HookChain]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    chain = HookChain([hook])
    return CallLifecycle.build(provider.get_tracer("test"), PriceBook(), metrics, chain), chain  # type: ignore[arg-type]


def record() -> CallRecord:
    return CallRecord(Operation.CHAT, Caller(), {}, None, model="m", group="m", deployment=DEPLOYMENT,
                      request={"model": "m", "messages": []})


async def test_a_call_ends_once_however_many_ends_are_asked_for(exporter: InMemorySpanExporter) -> None:
    hook, metrics = Recorder(), Metrics()
    calls, chain = lifecycle(exporter, hook, metrics)
    end = calls.start(record(), DEPLOYMENT, with_request=True)
    end.succeed({})
    end.call.error = UpstreamTimeout("late")
    end.fail()
    end.stream_ended({})
    await chain.runner.drain(5.0)
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.OK
    assert (end.ended, len(metrics.records), hook.seen) == (True, 1, [("success", None)])


async def test_a_stream_that_left_an_error_ends_as_a_failure(exporter: InMemorySpanExporter) -> None:
    hook, metrics = Recorder(), Metrics()
    calls, chain = lifecycle(exporter, hook, metrics)
    end = calls.start(record(), DEPLOYMENT, with_request=True)
    end.call.error = UpstreamTimeout("late")
    end.stream_ended({sc.STREAM_OUTCOME: sc.STREAM_UPSTREAM_ERROR})
    await chain.runner.drain(5.0)
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes[sc.STREAM_OUTCOME], span.attributes[sc.ERROR_TYPE]) == (sc.STREAM_UPSTREAM_ERROR,
                                                                                    "upstream_timeout")
    assert hook.seen == [("failure", "upstream_timeout")]


async def test_an_end_that_broke_halfway_leaves_the_call_to_the_next_end(exporter: InMemorySpanExporter) -> None:
    hook, metrics = Recorder(), Metrics(fail_first=1)
    calls, chain = lifecycle(exporter, hook, metrics)
    end = calls.start(record(), DEPLOYMENT, with_request=True)
    with pytest.raises(ZeroDivisionError):
        end.succeed({})
    assert not end.ended
    end.call.error = InvalidRequest("internal", code="internal_error")
    end.fail()
    await chain.runner.drain(5.0)
    (span,) = exporter.get_finished_spans()  # ended by ``fail`` (the SDK keeps the OK ``finish`` had set)
    assert span.attributes[sc.ERROR_TYPE] == "internal_error"
    assert (end.ended, len(metrics.records), hook.seen) == (True, 1, [("failure", "internal_error")])


async def test_a_rejected_call_gets_an_error_span_of_its_own_and_its_error_back(
        exporter: InMemorySpanExporter) -> None:
    hook, metrics = Recorder(), Metrics()
    calls, chain = lifecycle(exporter, hook, metrics)
    call = CallRecord(Operation.EMBEDDINGS, Caller(team_id="t"), {}, "10.0.0.1")
    call.error = InvalidRequest("not JSON", code="invalid_json")
    assert calls.reject(call) is call.error
    await chain.runner.drain(5.0)
    (span,) = exporter.get_finished_spans()
    assert (span.name, span.status.status_code) == ("embeddings", StatusCode.ERROR)
    assert (span.attributes[sc.CALL_TYPE], span.attributes[sc.ERROR_TYPE], span.attributes[sc.HTTP_STATUS_CODE]) == (
        "aembedding", "invalid_json", 400)
    assert (metrics.records[0][sc.TEAM_ID], hook.seen) == ("t", [("failure", "invalid_json")])
