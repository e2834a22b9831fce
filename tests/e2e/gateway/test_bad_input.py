"""Every bad input and upstream failure: its status, OpenAI's error JSON, and an ERROR span for failure destinations.

One gateway serves the module. Tests run one at a time and each waits for its own span, so the
span a test caused is the first one written after the count it saw when it started.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from app.calls.attributes import ELLIPSIS, MAX_CLIENT_NAME
from contracts import semconv as sc
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.upstream import LEAKED_KEY, Behaviour, FakeOpenAI, closed_port

UPSTREAM_KEY = "sk-upstream-secret-000111222"
AZURE_STYLE_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # Azure keys are 32 hex digits with no prefix
MAX_BODY = 2048
CHAT = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
CHAT_PATH = "/v1/chat/completions"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def gw(upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    def model(name: str, api_base: str, **params: Any) -> dict[str, Any]:
        return {"model_name": name, "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": api_base,
                                                       "api_key": UPSTREAM_KEY, **params}}

    config = {
        "model_list": [model("gpt", upstream.api_base), model("slow", upstream.api_base, timeout=0.3),
                       model("refused", f"http://127.0.0.1:{closed_port()}/v1"),
                       model("azure-style", upstream.api_base, api_key=AZURE_STYLE_KEY),
                       {"model_name": "mock-gpt", "litellm_params": {"model": "mock/mock-gpt"}}],
        "litellm_settings": {"success_callback": ["file"], "failure_callback": ["file"]},
        "general_settings": {"max_request_body_bytes": MAX_BODY},
    }
    with running_gateway(config, data_dir=tmp_path_factory.mktemp("bad-input")) as running:
        yield running


def post(gw: RunningGateway, path: str, body: Any) -> tuple[httpx.Response, dict[str, Any]]:
    """Send ``body`` (bytes as is, anything else as JSON); return the answer and the span it caused."""
    before = len(gw.spans())
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = httpx.post(gw.base_url + path, content=content, headers={"content-type": "application/json"},
                          timeout=10)
    spans = gw.wait_for_spans(before + 1)
    assert len(spans) == before + 1, [s["name"] for s in spans[before:]]
    return response, spans[before]


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"]
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def assert_error_span(span: dict[str, Any], name: str, error_type: str, status: int) -> None:
    assert (span["name"], span["kind"], span["status"]["code"]) == (name, "CLIENT", "ERROR")
    attrs = span["attributes"]
    assert (attrs[sc.ERROR_TYPE], attrs[sc.HTTP_STATUS_CODE]) == (error_type, status)
    assert attrs[sc.OPERATION_NAME] == name.split(" ")[0]


MESSAGES = [{"role": "user", "content": "hi"}]
BAD_REQUESTS = [
    # id, path, body, status, param, code, span name
    ("malformed-json", CHAT_PATH, b'{"model": "gpt", "messages": [', 400, None, "invalid_json", "chat"),
    ("empty-body", CHAT_PATH, b"", 400, None, "invalid_json", "chat"),
    ("json-array", CHAT_PATH, b'[{"model": "gpt"}]', 400, None, "invalid_json", "chat"),
    ("json-string", CHAT_PATH, b'"hello"', 400, None, "invalid_json", "chat"),
    ("missing-model", CHAT_PATH, {"messages": MESSAGES}, 400, "model", "missing_required_parameter", "chat"),
    ("model-not-string", CHAT_PATH, {"model": 4, "messages": MESSAGES}, 400, "model", "invalid_type", "chat"),
    ("missing-messages", CHAT_PATH, {"model": "gpt"}, 400, "messages", "missing_required_parameter", "chat gpt"),
    ("messages-string", CHAT_PATH, {"model": "gpt", "messages": "hi"}, 400, "messages", "invalid_type", "chat gpt"),
    ("messages-empty", CHAT_PATH, {"model": "gpt", "messages": []}, 400, "messages", "invalid_value", "chat gpt"),
    ("message-without-role", CHAT_PATH, {"model": "gpt", "messages": [{"content": "x"}]}, 400, "messages[0].role",
     "missing_required_parameter", "chat gpt"),
    ("temperature-string", CHAT_PATH, {**CHAT, "temperature": "hot"}, 400, "temperature", "invalid_type",
     "chat gpt"),
    ("temperature-bool", CHAT_PATH, {**CHAT, "temperature": True}, 400, "temperature", "invalid_type", "chat gpt"),
    ("stream-string", CHAT_PATH, {**CHAT, "stream": "yes"}, 400, "stream", "invalid_type", "chat gpt"),
    ("max-tokens-float", CHAT_PATH, {**CHAT, "max_tokens": 1.5}, 400, "max_tokens", "invalid_type", "chat gpt"),
    ("metadata-string", CHAT_PATH, {**CHAT, "metadata": "x"}, 400, "metadata", "invalid_type", "chat gpt"),
    ("embeddings-missing-input", "/v1/embeddings", {"model": "gpt"}, 400, "input", "missing_required_parameter",
     "embeddings gpt"),
    ("completion-prompt-number", "/v1/completions", {"model": "gpt", "prompt": 5}, 400, "prompt", "invalid_type",
     "text_completion gpt"),
    # issue #9: each of these was a 500 with no span
    ("tool-calls-a-number", CHAT_PATH, {"model": "gpt", "messages": [{"role": "assistant", "content": "x",
                                                                      "tool_calls": 5}]},
     400, "messages[0].tool_calls", "invalid_type", "chat gpt"),
    ("tool-call-without-id", CHAT_PATH, {"model": "gpt", "messages": [{"role": "assistant", "content": "x",
                                                                       "tool_calls": [{"function": "f"}]}]},
     400, "messages[0].tool_calls[0].id", "missing_required_parameter", "chat gpt"),
    ("tool-call-function-a-string", CHAT_PATH, {"model": "gpt", "messages": [
        {"role": "assistant", "content": "x", "tool_calls": [{"id": "c1", "type": "function", "function": "f"}]}]},
     400, "messages[0].tool_calls[0].function", "invalid_type", "chat gpt"),
    ("temperature-10e400", CHAT_PATH, b'{"model": "gpt", "messages": [{"role": "user", "content": "hi"}], '
                                      b'"temperature": 1' + b"0" * 400 + b"}", 400, "temperature", "invalid_value",
     "chat gpt"),
    ("chat-nested-990", CHAT_PATH, b'{"model": "gpt", "messages": ' + b"[" * 990 + b"]" * 990 + b"}", 400, None,
     "invalid_value", "chat"),
    ("embeddings-nested-990", "/v1/embeddings", b'{"model": "gpt", "input": ' + b"[" * 990 + b"]" * 990 + b"}", 400,
     None, "invalid_value", "embeddings"),
    # and the rest of the body's shape
    ("max-tokens-negative", CHAT_PATH, {**CHAT, "max_tokens": -1}, 400, "max_tokens", "invalid_value", "chat gpt"),
    ("n-zero", CHAT_PATH, {**CHAT, "n": 0}, 400, "n", "invalid_value", "chat gpt"),
    ("stop-five", CHAT_PATH, {**CHAT, "stop": list("abcde")}, 400, "stop", "invalid_value", "chat gpt"),
    ("content-part-without-type", CHAT_PATH, {**CHAT, "messages": [{"role": "user", "content": [{"text": "x"}]}]},
     400, "messages[0].content[0].type", "missing_required_parameter", "chat gpt"),
    ("tools-function-nameless", CHAT_PATH, {**CHAT, "tools": [{"type": "function", "function": {}}]}, 400,
     "tools[0].function.name", "missing_required_parameter", "chat gpt"),
    ("response-format-string", CHAT_PATH, {**CHAT, "response_format": "json"}, 400, "response_format",
     "invalid_type", "chat gpt"),
    ("embeddings-input-empty", "/v1/embeddings", {"model": "gpt", "input": []}, 400, "input", "invalid_value",
     "embeddings gpt"),
]


@pytest.mark.parametrize(("path", "body", "status", "param", "code", "span_name"),
                         [case[1:] for case in BAD_REQUESTS], ids=[case[0] for case in BAD_REQUESTS])
def test_bad_request_is_openai_error_json_and_an_error_span(gw: RunningGateway, upstream: FakeOpenAI, path: str,
                                                            body: Any, status: int, param: str | None, code: str,
                                                            span_name: str) -> None:
    sent_before = len(upstream.requests)
    response, span = post(gw, path, body)
    error = error_of(response, status)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    if param is not None:
        assert param.split("[")[0] in error["message"]
    assert_error_span(span, span_name, code, status)
    assert span["status"]["description"] == error["message"]
    assert len(upstream.requests) == sent_before  # nothing bad is forwarded


def test_an_unknown_model_is_404_listing_the_configured_names(gw: RunningGateway) -> None:
    response, span = post(gw, CHAT_PATH, {**CHAT, "model": "gpt-5-turbo"})
    error = error_of(response, 404)
    assert (error["type"], error["param"], error["code"]) == ("not_found_error", "model", "model_not_found")
    assert error["message"] == ("model 'gpt-5-turbo' is not configured on this gateway; "
                                "available: gpt, slow, refused, azure-style, mock-gpt")
    assert_error_span(span, "chat gpt-5-turbo", "model_not_found", 404)


def test_a_body_over_the_configured_limit_is_413(gw: RunningGateway) -> None:
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * MAX_BODY}]}
    response, span = post(gw, CHAT_PATH, big)
    error = error_of(response, 413)
    assert (error["type"], error["code"]) == ("invalid_request_error", "request_too_large")
    assert "max_request_body_bytes" in error["message"]
    assert_error_span(span, "chat", "request_too_large", 413)
    just_under = {**CHAT, "messages": [{"role": "user", "content": "x" * (MAX_BODY - 200)}],
                  "model": "mock-gpt"}
    response, span = post(gw, CHAT_PATH, just_under)
    assert response.status_code == 200
    assert span["status"]["code"] == "OK"


def _chunked(data: bytes, size: int = 512) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def test_a_chunked_body_without_content_length_is_counted_as_it_arrives(gw: RunningGateway) -> None:
    """No Content-Length to check up front: the limit holds on the bytes received."""
    before = len(gw.spans())
    big = json.dumps({**CHAT, "messages": [{"role": "user", "content": "x" * (2 * MAX_BODY)}]}).encode()
    response = httpx.post(gw.base_url + CHAT_PATH, content=_chunked(big), timeout=10)
    assert "content-length" not in response.request.headers  # sent with Transfer-Encoding: chunked
    assert error_of(response, 413)["code"] == "request_too_large"
    small = json.dumps({**CHAT, "model": "mock-gpt"}).encode()
    response = httpx.post(gw.base_url + CHAT_PATH, content=_chunked(small, 16), timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "chat.completion"
    spans = gw.wait_for_spans(before + 2)
    assert_error_span(spans[before], "chat", "request_too_large", 413)
    assert spans[before + 1]["status"]["code"] == "OK"


def test_the_openai_sdk_raises_its_own_error_classes(gw: RunningGateway) -> None:
    before = len(gw.spans())
    with openai.OpenAI(base_url=gw.openai_base_url, api_key="x", max_retries=0) as client:
        with pytest.raises(openai.NotFoundError) as missing:
            client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.BadRequestError) as bad:
            client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}],
                                           temperature="hot")  # type: ignore[arg-type]
    assert missing.value.code == "model_not_found"
    assert (bad.value.param, bad.value.code) == ("temperature", "invalid_type")
    assert [s["attributes"][sc.ERROR_TYPE] for s in gw.wait_for_spans(before + 2)[before:]] == [
        "model_not_found", "invalid_type"]  # and later tests count from here


def test_the_openai_sdk_gets_the_param_of_a_bad_tool_call(gw: RunningGateway) -> None:
    before = len(gw.spans())
    with (openai.OpenAI(base_url=gw.openai_base_url, api_key="x", max_retries=0) as client,
          pytest.raises(openai.BadRequestError) as bad):
        client.chat.completions.create(model="gpt", messages=[
            {"role": "assistant", "content": "x", "tool_calls": 5}])  # type: ignore[list-item]
    assert (bad.value.param, bad.value.code) == ("messages[0].tool_calls", "invalid_type")
    assert_error_span(gw.wait_for_spans(before + 1)[before], "chat gpt", "invalid_type", 400)


@pytest.mark.parametrize("broken", ["_group", "_complete"], ids=["before-the-span", "after-the-span"])
def test_a_bug_is_a_500_in_openai_error_json_and_one_error_span(gw: RunningGateway, monkeypatch: pytest.MonkeyPatch,
                                                                broken: str) -> None:
    """A bug stands in for any exception the proxy does not expect, whether or not its span had started."""
    def bug(*_args: Any, **_kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(gw.gateway.proxy, broken, bug)  # this gateway's own service, restored after the test
    response, span = post(gw, CHAT_PATH, {**CHAT, "model": "mock-gpt"})
    error = error_of(response, 500)
    assert (error["type"], error["code"]) == ("internal_error", "internal_error")
    assert_error_span(span, "chat mock-gpt", "internal_error", 500)
    assert span["status"]["description"] == "internal error: ZeroDivisionError"


# --- upstream failures ----------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "kind", "code"), [(401, "invalid_request_error", "invalid_api_key"),
                                                      (429, "rate_limit_exceeded", "rate_limit_exceeded"),
                                                      (500, "server_error", "fake_500")])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_upstream_error_keeps_its_status_and_never_echoes_a_key(
        gw: RunningGateway, upstream: FakeOpenAI, status: int, kind: str, code: str, stream: bool) -> None:
    upstream.script(Behaviour(status=status))
    response, span = post(gw, CHAT_PATH, {**CHAT, "stream": stream})
    error = error_of(response, status)
    assert (error["type"], error["code"]) == (kind, code)
    assert error["message"].startswith("upstream error from gpt (127.0.0.1): Incorrect API key provided: sk-***")
    for secret in (LEAKED_KEY, UPSTREAM_KEY, LEAKED_KEY[8:]):
        assert secret not in response.text
        assert secret not in json.dumps(span)
    assert_error_span(span, "chat gpt", code, status)
    assert span["attributes"][sc.DEPLOYMENT_ID] == "gpt-0"


def test_the_deployments_own_key_is_scrubbed_even_without_a_known_prefix(gw: RunningGateway,
                                                                       upstream: FakeOpenAI) -> None:
    upstream.script(Behaviour(status=403, message=f"Access denied for key {AZURE_STYLE_KEY} on this resource"))
    response, span = post(gw, CHAT_PATH, {**CHAT, "model": "azure-style"})
    error = error_of(response, 403)
    assert error["message"] == "upstream error from azure-style (127.0.0.1): Access denied for key *** on this resource"
    assert AZURE_STYLE_KEY not in response.text
    assert AZURE_STYLE_KEY not in json.dumps(span)
    assert_error_span(span, "chat azure-style", "fake_403", 403)


def test_an_upstream_timeout_is_504_naming_model_and_host(gw: RunningGateway, upstream: FakeOpenAI) -> None:
    upstream.script(Behaviour(delay=3.0))
    response, span = post(gw, CHAT_PATH, {**CHAT, "model": "slow"})
    error = error_of(response, 504)
    assert (error["type"], error["code"]) == ("upstream_error", "upstream_timeout")
    assert error["message"] == "model 'slow' (upstream 127.0.0.1) did not answer within 0.3s"
    assert_error_span(span, "chat slow", "upstream_timeout", 504)
    assert span["duration_ms"] < 2500


def test_a_refused_connection_is_502_naming_model_and_host(gw: RunningGateway) -> None:
    response, span = post(gw, CHAT_PATH, {**CHAT, "model": "refused"})
    error = error_of(response, 502)
    assert (error["type"], error["code"]) == ("upstream_error", "upstream_unavailable")
    assert error["message"].startswith("could not connect to model 'refused' (upstream 127.0.0.1)")
    assert UPSTREAM_KEY not in response.text
    assert_error_span(span, "chat refused", "upstream_unavailable", 502)


def test_a_rejected_call_joins_the_clients_trace(gw: RunningGateway) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    before = len(gw.spans())
    response = httpx.post(f"{gw.base_url}{CHAT_PATH}", content=b"{not json",
                          headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
    assert response.status_code == 400
    span = gw.wait_for_spans(before + 1)[before]
    assert (span["trace_id"], span["parent_span_id"]) == (trace_id, parent_id)


def test_invented_model_names_become_no_metric_label_and_are_cut_on_the_span(gw: RunningGateway) -> None:
    """Issue 20, item 3: every name a client invents was a /metrics series kept until restart, and went
    whole into the span's name, attributes and status."""
    ok, _ = post(gw, CHAT_PATH, {"model": "mock-gpt", "messages": MESSAGES})
    assert ok.status_code == 200
    invented = [f"invented-{i}-" + "m" * 1800 for i in range(3)]
    for name in invented:
        for body, status in (({"model": name, "messages": MESSAGES}, 404), ({"model": name}, 400)):
            response, span = post(gw, CHAT_PATH, body)
            error = error_of(response, status)
            assert len(span["name"]) <= len("chat ") + MAX_CLIENT_NAME + len(ELLIPSIS)
            assert span["attributes"][sc.REQUEST_MODEL] == name[:MAX_CLIENT_NAME] + ELLIPSIS
            assert len(error["message"]) < len(name) and len(span["status"]["description"]) < len(name)
    metrics = httpx.get(gw.base_url + "/metrics", timeout=10).text
    assert "invented-" not in metrics
    assert 'gen_ai_request_model="unknown"' in metrics and 'gen_ai_request_model="mock-gpt"' in metrics
