"""The hook seam of the proxy: each point runs where it should, may change or reject what it may, and
the record hooks and the span see is one truth (content removed where the call may not log it)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from app.calls.caller import Caller
from app.calls.pricing import PriceBook
from app.calls.record import REDACTED, CallRecord, SentRequest
from app.config.settings import DeploymentConfig
from app.errors import GatewayError, InvalidRequest
from app.gateway.proxy import Answer, CallContext, ProxyService, StreamAnswer
from app.hooks.chain import BackgroundRunner, CallHook, HookChain, StreamFilter
from app.providers import ModelGroup, ModelRouter
from app.providers.base import UpstreamReply
from contracts import semconv as sc

SECRET = "sk-upstream-0123456789abcdef"
PROMPT = "the-prompt-marker"
ANSWER = "the-answer-marker"


def chunk(text: str, finish: str | None = None) -> bytes:
    body = {"id": "c1", "created": 7, "model": "m-up", "choices": [{"index": 0, "delta": {"content": text},
                                                                   "finish_reason": finish}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


USAGE = b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n'
DONE = b"data: [DONE]\n\n"


@dataclass
class Stream:
    items: list[bytes]
    status: int = 200
    retry_after: int | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        for item in self.items:
            yield item

    async def read(self) -> bytes:
        return b""

    async def aclose(self) -> None:
        return None


@dataclass
class RecordingDeployment:
    """Answers a fixed chat completion or stream and keeps every payload it was sent."""

    events: list[bytes] = field(default_factory=lambda: [chunk(ANSWER), chunk("", "stop"), USAGE, DONE])
    config: DeploymentConfig = field(default_factory=lambda: DeploymentConfig("m", "openai", "m-up", "m-0",
                                                                             api_key=SECRET))
    provider_name: str = sc.PROVIDER_OPENAI
    server_address: str = "127.0.0.1"
    server_port: int = 9
    payloads: list[dict[str, Any]] = field(default_factory=list)

    async def complete(self, operation: str, payload: dict[str, Any]) -> UpstreamReply:
        payload["model"] = self.config.upstream_model  # as the real deployments do
        self.payloads.append(payload)
        answer = {"id": "r1", "object": "chat.completion", "model": "m-up",
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER},
                               "finish_reason": "stop"}],
                  "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
        return UpstreamReply(200, json.dumps(answer).encode())

    async def stream(self, operation: str, payload: dict[str, Any]) -> Stream:
        payload["model"] = self.config.upstream_model
        self.payloads.append(payload)
        return Stream(self.events)

    def sent_request(self, operation: str, payload: dict[str, Any]) -> SentRequest:
        return SentRequest("POST", "http://127.0.0.1:9/v1/chat/completions",
                           {"authorization": f"Bearer {SECRET}", "content-type": "application/json"}, payload)


class Recorder(CallHook):
    """Records what each point saw; ``finished`` is set when a success or failure hook ran."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.finished = asyncio.Event()

    async def on_success(self, call: CallRecord) -> None:
        self.seen.append(("success", call))
        self.finished.set()

    async def on_failure(self, call: CallRecord) -> None:
        self.seen.append(("failure", call))
        self.finished.set()

    async def record(self) -> CallRecord:
        await asyncio.wait_for(self.finished.wait(), 5)
        return self.seen[-1][1]


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    yield memory
    memory.shutdown()


def service(exporter: InMemorySpanExporter, hooks: list[CallHook], deployment: RecordingDeployment,
            **kwargs: Any) -> ProxyService:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    router = ModelRouter({"m": ModelGroup("m", [deployment]), "other": ModelGroup("other", [deployment])})
    return ProxyService(router, provider.get_tracer("test"), PriceBook(), None, hooks=HookChain(hooks), **kwargs)


def context(*, capture: bool = True, headers: dict[str, str] | None = None) -> CallContext:
    return CallContext(caller=Caller(key_hash="ab" * 32, team_id="t1"), client_ip="127.0.0.1",
                       headers=headers or {"authorization": "Bearer sk-caller-key-000000", "x-trace": "keep"},
                       capture_content=capture, path="/v1/chat/completions")


def request(stream: bool = False, **extra: Any) -> bytes:
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": PROMPT}], "stream": stream,
                       **extra}).encode()


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    [span] = exporter.get_finished_spans()
    return span


async def drain(answer: StreamAnswer) -> list[bytes]:
    try:
        return [event async for event in answer.relay.events()]
    finally:
        await answer.relay.close()


async def test_a_before_hook_changes_the_request_the_upstream_and_the_span_see(
        exporter: InMemorySpanExporter) -> None:
    class Rewrite(CallHook):
        async def before_upstream(self, call: CallRecord) -> None:
            call.request["messages"][0]["content"] = "rewritten"
            call.request["temperature"] = 0.5

    deployment = RecordingDeployment()
    answer = await service(exporter, [Rewrite()], deployment).handle(sc.OP_CHAT, request(), context())
    assert isinstance(answer, Answer) and answer.status == 200
    assert deployment.payloads[0]["messages"][0]["content"] == "rewritten"
    span = only_span(exporter)
    assert "rewritten" in span.attributes[sc.INPUT_MESSAGES] and PROMPT not in span.attributes[sc.INPUT_MESSAGES]
    assert span.attributes[sc.REQUEST_TEMPERATURE] == 0.5


async def test_a_before_hook_that_breaks_the_request_gets_a_400_not_a_bad_upstream_call(
        exporter: InMemorySpanExporter) -> None:
    class Break(CallHook):
        async def before_upstream(self, call: CallRecord) -> None:
            call.request["messages"] = "not a list"

    deployment = RecordingDeployment()
    with pytest.raises(InvalidRequest):
        await service(exporter, [Break()], deployment).handle(sc.OP_CHAT, request(), context())
    assert deployment.payloads == []


async def test_a_before_hook_rejects_the_call_the_model_is_never_called_and_failure_hooks_see_it(
        exporter: InMemorySpanExporter) -> None:
    class Reject(CallHook):
        name = "reject"

        async def before_upstream(self, call: CallRecord) -> None:
            raise GatewayError("not today", status=400, type="invalid_request_error", code="rejected_by_hook")

    recorder, deployment = Recorder(), RecordingDeployment()
    with pytest.raises(GatewayError) as raised:
        await service(exporter, [Reject(), recorder], deployment).handle(sc.OP_CHAT, request(), context())
    assert raised.value.status == 400 and raised.value.code == "rejected_by_hook"
    assert deployment.payloads == []
    span = only_span(exporter)
    assert span.status.status_code is StatusCode.ERROR and span.attributes[sc.ERROR_TYPE] == "rejected_by_hook"
    call = await recorder.record()
    assert recorder.seen[-1][0] == "failure" and call.error is raised.value


async def test_an_after_hook_replaces_or_withholds_the_answer(exporter: InMemorySpanExporter) -> None:
    class Replace(CallHook):
        async def after_upstream(self, call: CallRecord) -> None:
            call.response = {**call.response, "choices": [{"index": 0, "finish_reason": "stop",
                                                           "message": {"role": "assistant", "content": "new"}}]}

    answer = await service(exporter, [Replace()], RecordingDeployment()).handle(sc.OP_CHAT, request(), context())
    assert json.loads(answer.body)["choices"][0]["message"]["content"] == "new"

    class Withhold(CallHook):
        async def after_upstream(self, call: CallRecord) -> None:
            raise GatewayError("blocked output", status=400, code="output_blocked")

    with pytest.raises(GatewayError, match="blocked output"):
        await service(exporter, [Withhold()], RecordingDeployment()).handle(sc.OP_CHAT, request(), context())
    assert exporter.get_finished_spans()[-1].attributes[sc.ERROR_TYPE] == "output_blocked"


async def test_success_hooks_get_the_assembled_stream_and_every_chunk(exporter: InMemorySpanExporter) -> None:
    class Chunks(CallHook):
        def __init__(self) -> None:
            self.chunks: list[dict[str, Any]] = []

        def on_stream_event(self, call: CallRecord, chunk: dict[str, Any]) -> None:
            self.chunks.append(chunk)

    chunks, recorder = Chunks(), Recorder()
    answer = await service(exporter, [chunks, recorder], RecordingDeployment()).handle(
        sc.OP_CHAT, request(stream=True), context())
    events = await drain(answer)
    assert b"".join(events).count(b"data: ") == 3  # the usage chunk was the gateway's idea: not relayed
    call = await recorder.record()
    assert call.response["choices"] == [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": ANSWER}}]
    assert call.response["usage"]["total_tokens"] == 5 and call.response["created"] == 7
    assert call.stream_outcome == sc.STREAM_COMPLETED and call.time_to_first_chunk is not None
    assert len(chunks.chunks) == 3
    assert "stream_options" not in call.request  # what the gateway added for itself is not the client's


async def test_a_stream_filter_holds_back_and_ends_the_stream_with_an_error(exporter: InMemorySpanExporter) -> None:
    class HoldAll(CallHook):
        def stream_filter(self, call: CallRecord) -> StreamFilter:
            class Filter:
                async def feed(self, piece: bytes) -> bytes:
                    return b""

                async def end(self) -> bytes:
                    raise GatewayError("the answer was blocked", status=400, code="output_blocked")
            return Filter()

    answer = await service(exporter, [HoldAll()], RecordingDeployment()).handle(
        sc.OP_CHAT, request(stream=True), context())
    events = await drain(answer)
    assert len(events) == 1 and ANSWER.encode() not in events[0]
    assert json.loads(events[0][6:])["error"]["code"] == "output_blocked"
    span = only_span(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.STREAM_OUTCOME] == sc.STREAM_REJECTED


async def test_an_error_the_upstream_sends_mid_stream_ends_it_scrubbed_and_fails_the_span(
        exporter: InMemorySpanExporter) -> None:
    leak = json.dumps({"error": {"message": f"quota exceeded for key {SECRET}", "type": "server_error"}})
    deployment = RecordingDeployment(events=[chunk("partial"), f"data: {leak}\n\n".encode(), DONE])
    answer = await service(exporter, [], deployment).handle(sc.OP_CHAT, request(stream=True), context())
    events = await drain(answer)
    error = json.loads(events[-1][6:])["error"]
    assert "quota exceeded" in error["message"] and SECRET[8:20] not in error["message"]
    assert error["type"] == "server_error"
    span = only_span(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.STREAM_OUTCOME] == sc.STREAM_UPSTREAM_ERROR
    assert SECRET[8:20] not in span.status.description


async def test_logging_hooks_see_no_content_when_the_call_may_not_log_it(exporter: InMemorySpanExporter) -> None:
    recorder = Recorder()
    proxy = service(exporter, [recorder], RecordingDeployment(), redact_headers=frozenset({"x-trace"}))
    await proxy.handle(sc.OP_CHAT, request(metadata={"turn_off_message_logging": True, "tag": "kept"}), context())
    call = await recorder.record()
    assert call.request["messages"] == REDACTED
    assert call.response["choices"][0]["message"]["content"] == REDACTED
    assert call.metadata["tag"] == "kept" and call.usage["total_tokens"] == 5
    assert call.headers == {"authorization": "***", "x-trace": "***"}
    dumped = repr((call.request, call.response, call.sent, call.headers, call.metadata))
    assert PROMPT not in dumped and ANSWER not in dumped and SECRET not in dumped
    span = only_span(exporter)
    assert sc.INPUT_MESSAGES not in span.attributes and sc.OUTPUT_MESSAGES not in span.attributes


async def test_a_request_may_not_ask_for_more_logging_than_its_key_or_team_allow(
        exporter: InMemorySpanExporter) -> None:
    recorder = Recorder()
    proxy = service(exporter, [recorder], RecordingDeployment())
    body = request(metadata={"turn_off_message_logging": False, "log_raw_request": True})
    await proxy.handle(sc.OP_CHAT, body, context(capture=False))
    call = await recorder.record()
    assert call.request["messages"] == REDACTED and not call.log_raw_request
    span = only_span(exporter)
    attrs = span.attributes
    assert sc.INPUT_MESSAGES not in attrs and sc.metadata_key("raw_request") not in attrs
    assert PROMPT not in json.dumps(dict(attrs), default=str)


async def test_the_raw_request_is_the_curl_sent_upstream_with_the_provider_key_masked(
        exporter: InMemorySpanExporter) -> None:
    proxy = service(exporter, [], RecordingDeployment())
    await proxy.handle(sc.OP_CHAT, request(metadata={"log_raw_request": True}), context())
    raw = only_span(exporter).attributes[sc.metadata_key("raw_request")]
    assert raw.startswith("curl -X POST 'http://127.0.0.1:9/v1/chat/completions'")
    assert "-H 'authorization: ***'" in raw and PROMPT in raw and '"model": "m-up"' in raw
    assert SECRET[8:20] not in raw


async def test_a_model_a_hook_switches_to_is_resolved_and_checked_again(exporter: InMemorySpanExporter) -> None:
    class Reroute(CallHook):
        def __init__(self, model: str) -> None:
            self.model = model

        async def before_upstream(self, call: CallRecord) -> None:
            call.request["model"] = self.model

    with pytest.raises(GatewayError) as raised:
        await service(exporter, [Reroute("elsewhere")], RecordingDeployment()).handle(sc.OP_CHAT, request(), context())
    assert raised.value.status == 404 and raised.value.param == "model"
    answer = await service(exporter, [Reroute("other")], RecordingDeployment()).handle(sc.OP_CHAT, request(), context())
    assert answer.status == 200
    assert exporter.get_finished_spans()[-1].attributes[sc.REQUEST_MODEL] == "m"  # asked for; routed to "other"


def test_a_chain_keeps_per_point_only_the_hooks_that_override_it() -> None:
    class OnlySuccess(CallHook):
        async def on_success(self, call: CallRecord) -> None:
            return None

    chain = HookChain([OnlySuccess()])
    assert chain.success and not (chain.before or chain.after or chain.filters or chain.failure
                                  or chain.stream_events)
    assert not HookChain().wants_response and chain.wants_response


async def test_background_runner_counts_errors_timeouts_and_drops() -> None:
    runner = BackgroundRunner(timeout=0.05, max_pending=2)
    release = asyncio.Event()

    async def boom() -> None:
        raise ValueError("user code")

    async def slow() -> None:
        await release.wait()

    runner.submit("boom", boom)
    runner.submit("slow", slow)
    runner.submit("slow", slow)  # over max_pending: dropped, counted
    for _ in range(100):
        if runner.pending == 0:
            break
        await asyncio.sleep(0.02)
    assert runner.stats["boom"].errors == 1 and runner.stats["boom"].last_error == "ValueError"
    assert runner.stats["slow"].timeouts == 1 and runner.stats["slow"].dropped == 1
    done = asyncio.Event()
    runner.submit_sync("sync", lambda: (_ for _ in ()).throw(RuntimeError("sync user code")))
    runner.submit_sync("sync", done.set)
    for _ in range(100):
        if runner.stats["sync"].runs + runner.stats["sync"].errors == 2:
            break
        await asyncio.sleep(0.02)
    assert runner.stats["sync"].errors == 1 and runner.stats["sync"].runs == 1
    runner.close()
