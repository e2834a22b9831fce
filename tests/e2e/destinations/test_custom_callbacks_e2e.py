"""LiteLLM callback files on the real server with the official client: the seed's ``custom_callbacks.py``
(import lines changed) receiving every kind of event, pre-call hooks that rewrite and refuse, and
callbacks that raise or sleep while requests go on unaffected."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from app.calls.record import MASK
from app.custom_logger import completion_cost
from app.litellm.loader import load_callback
from tests.support.callbacks import write_seed
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.upstream import FakeOpenAI, closed_port

MASTER_KEY = "sk-master-0123456789abcdef"
SEED = "custom_callbacks.proxy_handler_instance"


def settings(upstream: FakeOpenAI, callbacks: list[str]) -> dict[str, Any]:
    fake = {"api_base": upstream.api_base, "api_key": "sk-upstream-0123456789"}
    return {"model_list": [
        {"model_name": "gpt-3.5-turbo", "litellm_params": {"model": "openai/gpt-3.5-turbo", **fake},
         "model_info": {"mode": "chat", "input_cost_per_token": 0.002}},
        {"model_name": "ada", "litellm_params": {"model": "openai/text-embedding-ada-002", **fake},
         "model_info": {"mode": "embedding", "input_cost_per_token": 0.002}},
        {"model_name": "down", "litellm_params": {"model": "openai/gpt-3.5-turbo",
                                                  "api_base": f"http://127.0.0.1:{closed_port()}/v1",
                                                  "api_key": "sk-upstream-0123456789"}}],
        "litellm_settings": {"callbacks": callbacks},
        "general_settings": {"master_key": MASTER_KEY}}


@contextmanager
def gateway(tmp_path: Path, callbacks: list[str]) -> Iterator[tuple[RunningGateway, FakeOpenAI, OpenAI]]:
    with FakeOpenAI() as upstream, running_gateway(settings(upstream, callbacks), data_dir=tmp_path) as gw, \
            OpenAI(base_url=gw.openai_base_url, api_key=MASTER_KEY, max_retries=0, timeout=20) as client:
        yield gw, upstream, client


def admin_get(gw: RunningGateway, path: str) -> httpx.Response:
    return httpx.get(gw.base_url + path, headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=10)


def wait_for_callback(gw: RunningGateway, name: str, done: Callable[[dict[str, Any]], bool],
                      timeout: float = 10.0) -> dict[str, Any]:
    """The callback's ``/health/destinations`` entry once ``done`` holds for it (its runs end off the path)."""
    deadline = time.monotonic() + timeout
    while True:
        entry = {c["name"]: c for c in admin_get(gw, "/health/destinations").json()["callbacks"]}[name]
        if done(entry) or time.monotonic() > deadline:
            return entry
        time.sleep(0.02)


def test_the_seed_file_receives_success_failure_stream_and_embedding_events(tmp_path: Path) -> None:
    write_seed(tmp_path)
    with gateway(tmp_path, [SEED]) as (gw, _upstream, client):
        handler = load_callback(SEED, tmp_path).obj
        reply = client.chat.completions.create(
            model="gpt-3.5-turbo", messages=[{"role": "user", "content": "good morning good sir"}],
            user="ishaan-app", temperature=0.2, extra_body={"metadata": {"tags": ["seed"]}},
            extra_headers={"x-request-note": "e2e"})
        chunks = list(client.chat.completions.create(
            model="gpt-3.5-turbo", messages=[{"role": "user", "content": "stream please"}], stream=True))
        client.embeddings.create(model="ada", input=["good morning"])
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model="down", messages=[{"role": "user", "content": "anyone there?"}])
        successes = handler.recorded.wait_for("async_log_success_event", 3)
        failures = handler.recorded.wait_for("async_log_failure_event", 1)
        for sync_method, count in (("log_success_event", 3), ("log_failure_event", 1), ("log_pre_api_call", 3),
                                   ("log_post_api_call", 4), ("log_stream_event", 2)):
            handler.recorded.wait_for(sync_method, count)
        health = admin_get(gw, "/health/destinations").json()
    by_type = {(kw["call_type"], kw["stream"]): (kw, resp, start, end) for kw, resp, start, end in successes}

    kwargs, response, start, end = by_type[("acompletion", False)]
    assert (kwargs["model"], kwargs["user"]) == ("gpt-3.5-turbo", "ishaan-app")
    assert kwargs["messages"] == [{"role": "user", "content": "good morning good sir"}]
    metadata = kwargs["litellm_params"]["metadata"]
    assert metadata["tags"] == ["seed"] and metadata["model_group"] == "gpt-3.5-turbo"
    assert metadata["deployment"] == "openai/gpt-3.5-turbo" and metadata["user_api_key"]
    assert metadata["headers"]["authorization"] == MASK and metadata["headers"]["x-request-note"] == "e2e"
    server = kwargs["litellm_params"]["proxy_server_request"]
    assert server["method"] == "POST" and server["url"].endswith("/chat/completions")
    assert server["body"]["temperature"] == 0.2 and server["headers"]["authorization"] == MASK
    assert kwargs["litellm_params"]["model_info"]["input_cost_per_token"] == 0.002
    assert isinstance(start, datetime) and isinstance(end, datetime) and end >= start
    assert response["usage"]["total_tokens"] == reply.usage.total_tokens == response.usage.total_tokens
    assert response.choices[0].message.content == reply.choices[0].message.content
    assert completion_cost(completion_response=response) == kwargs["response_cost"] > 0

    stream_kwargs, stream_response, _s, _e = by_type[("acompletion", True)]
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert stream_kwargs["messages"][0]["content"] == "stream please"
    assert stream_response["object"] == "chat.completion"
    assert stream_response.choices[0].message.content == streamed

    embed_kwargs, embed_response, _s, _e = by_type[("aembedding", False)]
    assert embed_kwargs["input"] == ["good morning"] and embed_kwargs["model"] == "ada"
    assert len(embed_response.data[0].embedding) > 0 and embed_response["usage"]["prompt_tokens"] == 5

    fail_kwargs, fail_response, _s, _e = failures[0]
    assert fail_response is None and fail_kwargs["model"] == "down"
    assert fail_kwargs["exception"] is not None and "Traceback" in fail_kwargs["traceback_exception"]
    assert "sk-upstream-0123456789" not in repr(successes) + repr(failures)
    assert MASTER_KEY not in repr(successes) + repr(failures)
    seed = {c["name"]: c for c in health["callbacks"]}[SEED]
    assert (seed["errors"], seed["timeouts"], seed["dropped"]) == (0, 0, 0)


REWRITE = """
from app.custom_logger import CustomLogger


class Rewriter(CustomLogger):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        data["messages"].insert(0, {"role": "system", "content": "Answer in French."})
        data["max_tokens"] = 7
        return data


class Refuser(CustomLogger):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        if "weekend" in data["messages"][-1]["content"]:
            error = Exception("no calls at the weekend")
            error.status_code = 403
            raise error
        if "crash" in data["messages"][-1]["content"]:
            raise KeyError("messages")
        return None


rewriter = Rewriter()
refuser = Refuser()
"""


def test_a_pre_call_hook_rewrites_the_request_upstream_sees(tmp_path: Path) -> None:
    (tmp_path / "hooks.py").write_text(textwrap.dedent(REWRITE))
    with gateway(tmp_path, ["hooks.rewriter"]) as (_gw, upstream, client):
        client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hello"}])
        sent = upstream.wait_for_requests(1)[0].body
    assert sent["messages"] == [{"role": "system", "content": "Answer in French."},
                                {"role": "user", "content": "hello"}]
    assert sent["max_tokens"] == 7 and "metadata" not in sent and "proxy_server_request" not in sent


@pytest.mark.parametrize(("content", "status", "message"), [
    ("call me at the weekend", 403, "request rejected by callback hooks.refuser: no calls at the weekend"),
    ("crash now", 400, "request rejected by callback hooks.refuser: 'messages'"),
])
def test_a_pre_call_hook_that_raises_refuses_the_call(tmp_path: Path, content: str, status: int,
                                                      message: str) -> None:
    (tmp_path / "hooks.py").write_text(textwrap.dedent(REWRITE))
    with gateway(tmp_path, ["hooks.refuser"]) as (gw, upstream, _client):
        answer = httpx.post(f"{gw.openai_base_url}/chat/completions", timeout=10,
                            headers={"Authorization": f"Bearer {MASTER_KEY}"},
                            json={"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": content}]})
        fine = httpx.post(f"{gw.openai_base_url}/chat/completions", timeout=10,
                          headers={"Authorization": f"Bearer {MASTER_KEY}"},
                          json={"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "hi"}]})
        assert fine.status_code == 200
        assert len(upstream.wait_for_requests(1)) == 1  # only the accepted call went upstream
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["message"] == message and error["code"] == "rejected_by_callback"
    assert error["type"] == ("permission_error" if status == 403 else "invalid_request_error")
    assert set(error) == {"message", "type", "param", "code"}


TROUBLE = """
import asyncio
import threading
import time

from app.custom_logger import CustomLogger


class Raising(CustomLogger):
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        raise RuntimeError("callback bug")


class Sleeping(CustomLogger):
    def __init__(self):
        super().__init__()
        self.started = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.started.set()
        self.release.wait(10)  # the user's time.sleep(10), ended early by the test
        self.finished.set()


class Napping(CustomLogger):
    # the async form: awaits up to 10 s on the event loop the gateway serves from

    def __init__(self):
        super().__init__()
        self.started = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.started.set()
        deadline = time.monotonic() + 10
        while not self.release.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self.finished.set()


raising = Raising()
sleeping = Sleeping()
napping = Napping()
"""


def test_callbacks_that_raise_or_sleep_leave_requests_unaffected(tmp_path: Path) -> None:
    (tmp_path / "trouble.py").write_text(textwrap.dedent(TROUBLE))
    with gateway(tmp_path, ["trouble.raising", "trouble.sleeping", "trouble.napping"]) as (gw, _upstream, client):
        sleepers = [load_callback(f"trouble.{name}", tmp_path).obj for name in ("sleeping", "napping")]
        try:
            for i in range(3):
                reply = client.chat.completions.create(model="gpt-3.5-turbo",
                                                       messages=[{"role": "user", "content": f"call {i}"}])
                assert reply.choices[0].message.content
            for sleeper in sleepers:
                assert sleeper.started.wait(10)
                assert not sleeper.finished.is_set()  # every request answered while the callbacks still sleep
            health = wait_for_callback(gw, "trouble.raising", lambda c: c["errors"] >= 3)
            metrics = admin_get(gw, "/metrics").text
        finally:
            for sleeper in sleepers:
                sleeper.release.set()
    line = 'spangate_callback_runs_total{callback="trouble.raising",outcome="error"} 3'
    assert line in metrics
    assert (health["errors"], health["last_error"]) == (3, "RuntimeError")
