"""The seed's handler and hand-written ones, run through ``HookChain`` on hand-built call records:
which points are wired, the kwargs and response shapes, rejections, redaction, and that slow or
failing user code is counted and never reaches the caller."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from app.calls.caller import Caller
from app.calls.record import REDACTED, CallRecord
from app.config.settings import DeploymentConfig
from app.custom_logger import CustomLogger, completion_cost
from app.errors import GatewayError, UpstreamUnavailable
from app.hooks.chain import BackgroundRunner, HookChain
from app.hooks.metrics import hooks_health
from app.litellm.hook import REJECTED, callback_hook
from app.litellm.loader import load_callback
from app.providers.mock import MockDeployment
from contracts.semconv import OP_CHAT, OP_EMBEDDINGS
from tests.support.callbacks import write_seed

CALLER = Caller(key_hash="h4sh", key_alias="ci-key", team_id="team-a", team_alias="Team A")
ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
          "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi there"}}],
          "usage": {"prompt_tokens": 11, "completion_tokens": 10, "total_tokens": 21}}


def deployment() -> MockDeployment:
    return MockDeployment(DeploymentConfig(model_name="gpt-4o-mini", provider="openai", upstream_model="gpt-4o-mini",
                                           deployment_id="dep-1", api_base="http://127.0.0.1:9/v1",
                                           api_key="sk-upstream-secret",
                                           model_info={"mode": "chat", "input_cost_per_token": 0.002}))


def record(*, capture: bool = True, operation: str = OP_CHAT, **fields: Any) -> CallRecord:
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "good morning"}], "user": "ishaan",
               "temperature": 0.2} if operation == OP_CHAT else {"model": "ada", "input": ["good morning"]}
    call = CallRecord(operation=operation, caller=CALLER, client_ip="127.0.0.1", path="/chat/completions",
                      headers={"host": "gw:4000", "authorization": "Bearer sk-client-secret", "x-trace": "t1"},
                      request=request, metadata={"tags": ["nightly"]}, model=request["model"],
                      deployment=deployment(), capture_content=capture)
    for name, value in fields.items():
        setattr(call, name, value)
    return call


def finished(call: CallRecord, response: dict[str, Any] | None = ANSWER, cost: float | None = 3.65e-05) -> CallRecord:
    call.response, call.cost, call.end_time, call.status = response, cost, call.start_time + 0.5, 200
    return call


class Recorder(CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, tuple[Any, ...]] = {}
        self.done = threading.Event()

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.seen["success"] = (kwargs, response_obj, start_time, end_time)
        self.done.set()

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self.seen["failure"] = (kwargs, response_obj, start_time, end_time)
        self.done.set()


async def settle(chain: HookChain) -> None:
    await chain.runner.drain(5.0)


def test_only_the_points_a_handler_overrides_are_wired() -> None:
    class PreOnly(CustomLogger):
        async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
            return None

    chain = HookChain([callback_hook("m.pre", PreOnly()), callback_hook("m.rec", Recorder())])
    assert [h.name for h in chain.before] == ["m.pre"]
    assert (chain.after, chain.stream_events) == ((), ())
    assert [h.name for h in chain.success] == ["m.rec"] and [h.name for h in chain.failure] == ["m.rec"]


async def test_success_kwargs_hold_the_documented_fields() -> None:
    handler = Recorder()
    chain = HookChain([callback_hook("custom_callbacks.h", handler)])
    chain.finished(finished(record()))
    await settle(chain)
    kwargs, response, start, end = handler.seen["success"]
    assert (kwargs["model"], kwargs["user"], kwargs["stream"]) == ("gpt-4o-mini", "ishaan", False)
    assert kwargs["messages"] == [{"role": "user", "content": "good morning"}]
    assert kwargs["call_type"] == "acompletion" and kwargs["optional_params"] == {"temperature": 0.2}
    params = kwargs["litellm_params"]
    metadata = params["metadata"]
    assert metadata["tags"] == ["nightly"]
    assert (metadata["user_api_key"], metadata["user_api_key_alias"], metadata["user_api_key_team_id"]) == \
        ("h4sh", "ci-key", "team-a")
    assert (metadata["model_group"], metadata["deployment"]) == ("gpt-4o-mini", "openai/gpt-4o-mini")
    assert metadata["headers"] == {"host": "gw:4000", "authorization": "***", "x-trace": "t1"}
    server = params["proxy_server_request"]
    assert (server["url"], server["method"]) == ("http://gw:4000/chat/completions", "POST")
    assert server["headers"]["authorization"] == "***"
    assert server["body"]["messages"][0]["content"] == "good morning" and server["body"]["metadata"] == \
        {"tags": ["nightly"]}
    assert params["model_info"] == {"id": "dep-1", "mode": "chat", "input_cost_per_token": 0.002}
    assert kwargs["response_cost"] == 3.65e-05 and "exception" not in kwargs
    assert isinstance(start, datetime) and (end - start).total_seconds() == pytest.approx(0.5)
    assert response["usage"]["total_tokens"] == 21 and response.usage.prompt_tokens == 11
    assert response.choices[0].message.content == "hi there"
    assert completion_cost(completion_response=response) == 3.65e-05
    assert "sk-client-secret" not in repr(kwargs) and "sk-upstream-secret" not in repr(kwargs)


async def test_failure_kwargs_carry_the_exception_and_its_traceback() -> None:
    handler = Recorder()
    chain = HookChain([callback_hook("custom_callbacks.h", handler)])
    try:
        raise UpstreamUnavailable("could not connect to model 'gpt-4o-mini'")
    except UpstreamUnavailable as exc:
        error = exc
    call = finished(record(), response=None, cost=None)
    call.error, call.status = error, 502
    chain.finished(call)
    await settle(chain)
    kwargs, response, _start, _end = handler.seen["failure"]
    assert response is None and kwargs["exception"] is error
    assert "UpstreamUnavailable: could not connect" in kwargs["traceback_exception"]
    assert "Traceback" in kwargs["traceback_exception"]
    assert completion_cost(completion_response=response) == 0.0


async def test_with_capture_off_no_content_reaches_the_handler() -> None:
    handler = Recorder()
    chain = HookChain([callback_hook("custom_callbacks.h", handler)])
    chain.finished(finished(record(capture=False)))
    await settle(chain)
    kwargs, response, _start, _end = handler.seen["success"]
    assert kwargs["messages"] == REDACTED and kwargs["litellm_params"]["proxy_server_request"]["body"]["messages"] \
        == REDACTED
    assert response.choices[0].message.content == REDACTED
    assert "good morning" not in repr(kwargs) and "hi there" not in repr(dict(response))
    assert response.usage.total_tokens == 21 and kwargs["litellm_params"]["metadata"]["tags"] == ["nightly"]


async def test_embeddings_response_is_the_whole_answer() -> None:
    handler = Recorder()
    chain = HookChain([callback_hook("custom_callbacks.h", handler)])
    body = {"object": "list", "model": "ada", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
            "usage": {"prompt_tokens": 2, "total_tokens": 2}}
    chain.finished(finished(record(operation=OP_EMBEDDINGS), response=body, cost=None))
    await settle(chain)
    kwargs, response, _start, _end = handler.seen["success"]
    assert kwargs["call_type"] == "aembedding" and kwargs["input"] == ["good morning"]
    assert response.data[0].embedding == [0.1, 0.2] and response["model"] == "ada"


async def test_pre_call_hook_rewrites_the_request_and_sees_the_caller() -> None:
    seen: dict[str, Any] = {}

    class Rewrite(CustomLogger):
        async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
            seen.update(key=user_api_key_dict, call_type=call_type, headers=data["metadata"]["headers"])
            cache.set_cache("n", 1)
            data["messages"].append({"role": "user", "content": "be brief"})
            data["metadata"]["checked"] = True
            return data

    chain = HookChain([callback_hook("m.rewrite", Rewrite())])
    call = record()
    await chain.before_upstream(call)
    assert call.request["messages"][-1] == {"role": "user", "content": "be brief"}
    assert "metadata" not in call.request and "proxy_server_request" not in call.request
    assert call.metadata == {"tags": ["nightly"], "checked": True}
    assert seen["key"].api_key == "h4sh" and seen["key"].team_id == "team-a" and seen["call_type"] == "completion"
    assert seen["headers"]["authorization"] == "***"


@pytest.mark.parametrize(("raised", "status", "message"), [
    (PermissionError("no weekend calls"), 400, "no weekend calls"),
    (type("HTTPException", (Exception,), {"status_code": 403, "detail": {"error": "team over budget"}})(), 403,
     "team over budget"),
])
async def test_pre_call_hook_that_raises_rejects_the_call(raised: Exception, status: int, message: str) -> None:
    class Reject(CustomLogger):
        async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
            raise raised

    chain = HookChain([callback_hook("m.reject", Reject())])
    with pytest.raises(GatewayError) as info:
        await chain.before_upstream(record())
    error = info.value
    assert (error.status, error.code) == (status, REJECTED)
    assert error.message == f"request rejected by callback m.reject: {message}"


async def test_moderation_and_post_call_success_hooks() -> None:
    class Guard(CustomLogger):
        async def async_moderation_hook(self, data, user_api_key_dict, call_type):
            if "forbidden" in str(data["messages"]):
                raise ValueError("flagged")

        async def async_post_call_success_hook(self, data, user_api_key_dict, response):
            response.choices[0].message.content = response.choices[0].message.content.upper()
            return response

    chain = HookChain([callback_hook("m.guard", Guard())])
    call = record()
    await chain.before_upstream(call)
    call.response = dict(ANSWER)
    await chain.after_upstream(call)
    assert call.response["choices"][0]["message"]["content"] == "HI THERE" and type(call.response) is dict
    bad = record()
    bad.request["messages"][0]["content"] = "forbidden words"
    with pytest.raises(GatewayError, match="flagged"):
        await chain.before_upstream(bad)


async def test_stream_events_reach_the_handler_off_the_path_and_redacted_when_capture_is_off() -> None:
    got: list[Any] = []
    both = threading.Event()

    class Streams(CustomLogger):
        def log_stream_event(self, kwargs, response_obj, start_time, end_time):
            got.append((kwargs["stream"], response_obj.choices[0].delta.content))
            if len(got) == 2:
                both.set()

    hook = callback_hook("m.streams", Streams())
    chain = HookChain([hook])
    chunk = {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "hel"}}]}
    calls = [record(stream=True), record(stream=True, capture=False)]
    for call in calls:
        chain.stream_event(call, chunk)
    assert await asyncio.to_thread(both.wait, 5.0)
    assert sorted(got) == sorted([(True, "hel"), (True, REDACTED)])
    assert len(hook._streams) == 2  # each stream's kwargs built once, kept until the call ends
    for call in calls:
        chain.finished(finished(call))
    await settle(chain)
    assert hook._streams == {}
    chain.runner.close()


async def test_errors_and_slow_callbacks_are_counted_never_raised() -> None:
    class Broken(CustomLogger):
        def log_success_event(self, kwargs, response_obj, start_time, end_time):
            raise KeyError("oops")

    class Slow(CustomLogger):
        async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
            await asyncio.sleep(10)

    runner = BackgroundRunner(timeout=0.2)
    chain = HookChain([callback_hook("m.broken", Broken()), callback_hook("m.slow", Slow())], runner)
    chain.finished(finished(record()))  # returns at once: nothing of theirs runs here
    await settle(chain)
    health = {entry["name"]: entry for entry in hooks_health(chain)}
    assert (health["m.broken"]["errors"], health["m.broken"]["last_error"]) == (1, "KeyError")
    assert health["m.slow"]["timeouts"] == 1 and health["m.slow"]["errors"] == 0
    runner.close()


async def test_the_seed_handler_runs_as_written(tmp_path: Path) -> None:
    write_seed(tmp_path)
    handler = load_callback("custom_callbacks.proxy_handler_instance", tmp_path).obj
    chain = HookChain([callback_hook("custom_callbacks.proxy_handler_instance", handler)])
    chain.finished(finished(record()))
    await settle(chain)
    chain.runner.close()
    stats = hooks_health(chain)[0]
    assert (stats["errors"], stats["timeouts"]) == (0, 0) and stats["runs"] >= 1
    kwargs, response, _start, _end = handler.recorded.of("async_log_success_event")[0]
    assert kwargs["litellm_params"]["metadata"]["model_group"] == "gpt-4o-mini"
    assert response["usage"]["completion_tokens"] == 10
    assert handler.recorded.wait_for("log_success_event")
    assert handler.recorded.wait_for("log_post_api_call")


async def test_with_message_logging_off_the_traceback_keeps_its_frames_but_not_the_message() -> None:
    handler = Recorder()
    chain = HookChain([callback_hook("custom_callbacks.h", handler)])
    quoted = "the upstream quoted the prompt: good " + "morning"
    try:
        raise UpstreamUnavailable(quoted)  # the source line shown in the traceback holds no prompt
    except UpstreamUnavailable as exc:
        error = exc
    call = finished(record(capture=False), response=None, cost=None)
    call.error, call.status = error, 502
    chain.finished(call)
    await settle(chain)
    kwargs, _response, _start, _end = handler.seen["failure"]
    assert "good morning" not in kwargs["traceback_exception"]
    shown = kwargs["exception"]
    assert isinstance(shown, UpstreamUnavailable) and shown.status == error.status
    assert "good morning" not in str(shown) and "good morning" not in shown.message
    assert "good morning" in str(error)  # the gateway's own error is untouched
    assert "UpstreamUnavailable: (message withheld" in kwargs["traceback_exception"]
    assert Path(__file__).name in kwargs["traceback_exception"]  # this test's own frame
