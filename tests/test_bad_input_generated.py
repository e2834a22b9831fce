"""Generated request bodies against the real gateway: no body, however bad, gets a 500 or goes unrecorded.

Bodies come from a schema-like strategy of OpenAI's chat and embeddings requests in which any field,
at any depth, is sometimes junk (wrong types, negative and huge numbers, nulls, unicode, 20000-deep
nesting), and then a field is sometimes dropped or added. Each request carries its own W3C trace
id, so after the run every call's span is found by trace id without waiting per request: exactly
one span each, ERROR with the answer's status for a rejected call, OK for an answered one.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import semconv as sc
from tests.support.gateway import RunningGateway, running_gateway

CHAT_MODEL, EMBEDDING_MODEL = "m", "e"
DEEP_MARKER = "\u0000deep\u0000"  # a string stand-in, swapped for raw nesting after json.dumps (which recurses)
DEEP = b"[" * 20_000 + b"]" * 20_000  # hypothesis raises the recursion limit while it runs: 990 levels may decode
SETTINGS = settings(max_examples=160, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    config = {"model_list": [{"model_name": name, "litellm_params": {"model": f"mock/{name}"}}
                             for name in (CHAT_MODEL, EMBEDDING_MODEL)],
              "litellm_settings": {"success_callback": ["file"], "failure_callback": ["file"]}}
    with running_gateway(config, data_dir=tmp_path_factory.mktemp("generated")) as running:
        yield running


# --- bodies: each field usually valid, sometimes junk -----------------------------------------------

junk = st.one_of(  # deep nesting first: one_of draws its first branches more often
    st.just(DEEP_MARKER), st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63, max_value=10**400),
    st.integers(max_value=-1), st.floats(allow_nan=False, allow_infinity=False), st.text(), st.just(""),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.text(), max_size=2),
)


def v(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The field's valid values nine times in ten, junk otherwise: deep fields get their turn too."""
    return st.sampled_from(range(10)).flatmap(lambda i: junk if i == 9 else valid)  # one_of merges repeats


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
    return v(st.fixed_dictionaries({k: v(s) for k, s in required.items()},
                                   optional={k: v(s) for k, s in (optional or {}).items()}))


def array(item: st.SearchStrategy[Any], min_size: int = 0, max_size: int = 3) -> st.SearchStrategy[Any]:
    return v(st.lists(v(item), min_size=min_size, max_size=max_size))


text = st.text(max_size=12)
name = st.text(alphabet="abcdefghij_", min_size=1, max_size=8)
tool_call = obj({"id": name, "type": st.just("function"), "function": obj({"name": name, "arguments": text})})
part = st.one_of(
    obj({"type": st.just("text"), "text": text}),
    obj({"type": st.just("image_url"),
         "image_url": st.one_of(st.just("https://example.test/a.png"), obj({"url": st.just("data:,AA")}))}),
    obj({"type": st.just("input_audio"), "input_audio": obj({"data": st.just("AAAA"), "format": st.just("wav")})}),
    obj({"type": st.just("file"), "file": obj({"file_id": name})}),
)
content = st.one_of(text, array(part, min_size=1))
message = st.one_of(
    obj({"role": st.sampled_from(["system", "developer", "user"]), "content": content}, {"name": name}),
    obj({"role": st.just("assistant"), "content": st.one_of(st.none(), text)},
        {"tool_calls": array(tool_call, min_size=1, max_size=2)}),
    obj({"role": st.just("tool"), "tool_call_id": name, "content": text}),
)
tool = obj({"type": st.just("function"), "function": obj(
    {"name": name}, {"description": text, "parameters": st.just({"type": "object", "properties": {}})})})
chat_body = st.fixed_dictionaries(
    {"model": v(st.just(CHAT_MODEL)), "messages": array(message, min_size=1, max_size=4)},
    optional={k: v(s) for k, s in {
        "temperature": st.floats(0, 2), "top_p": st.floats(0, 1), "n": st.integers(1, 3),
        "max_tokens": st.integers(0, 4096), "max_completion_tokens": st.integers(0, 4096),
        "presence_penalty": st.floats(-2, 2), "frequency_penalty": st.floats(-2, 2), "seed": st.integers(),
        "stop": st.one_of(text, array(text, max_size=4)), "stream": st.booleans(), "user": text,
        "tools": array(tool, min_size=1, max_size=2), "tool_choice": st.sampled_from(["none", "auto", "required"]),
        "response_format": obj({"type": st.just("json_object")}), "logit_bias": st.just({"50256": -100}),
        "logprobs": st.booleans(), "metadata": st.dictionaries(name, text, max_size=2),
    }.items()})
tokens = st.lists(v(st.integers(0, 100_000)), min_size=1, max_size=5)
embeddings_body = st.fixed_dictionaries(
    {"model": v(st.just(EMBEDDING_MODEL)),
     "input": v(st.one_of(st.text(min_size=1), array(st.text(min_size=1), min_size=1), tokens,
                          st.lists(tokens, min_size=1, max_size=3)))},
    optional={"dimensions": v(st.integers(1, 3072)), "encoding_format": v(st.sampled_from(["float", "base64"])),
              "user": v(text)})

# --- and then a field dropped or added ----------------------------------------------------------


def locations(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into a JSON value (the root excluded)."""
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield (*path, key)
        yield from locations(child, (*path, key))


def mutate(body: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    body = copy.deepcopy(body)
    for _ in range(data.draw(st.integers(0, 1), label="mutations")):
        paths = list(locations(body))
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans(), label="delete"):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.text(max_size=6), label="new key")] = data.draw(junk, label="junk")
    return body


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode().replace(json.dumps(DEEP_MARKER).encode(), DEEP)


# --- the run ------------------------------------------------------------------------------------


def assert_openai_error(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert list(body) == ["error"], body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and (error["param"] is None or isinstance(error["param"], str)), error


def run_generated(gw: RunningGateway, path: str, bodies: st.SearchStrategy[dict[str, Any]],
                  first_trace_id: int) -> None:
    calls: list[tuple[str, int]] = []
    before = len(gw.spans())
    with httpx.Client(base_url=gw.base_url, timeout=10) as client:

        @SETTINGS
        @given(bodies, st.data())
        def post_generated(body: dict[str, Any], data: st.DataObject) -> None:
            raw = encode(mutate(body, data))
            trace_id = f"{first_trace_id + len(calls):032x}"
            response = client.post(path, content=raw, headers={"content-type": "application/json",
                                                               "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
            calls.append((trace_id, response.status_code))
            assert response.status_code in (200, 400, 404), (response.status_code, response.text, raw[:300])
            if response.status_code != 200:
                assert_openai_error(response)

        post_generated()
    assert any(status == 200 for _, status in calls) and any(status == 400 for _, status in calls)
    spans = gw.wait_for_spans(before + len(calls))
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for span in spans[before:]:
        by_trace.setdefault(span["trace_id"], []).append(span)
    for trace_id, status in calls:
        [span] = by_trace.pop(trace_id)
        outcome = span["status"]["code"], span["attributes"].get(sc.HTTP_STATUS_CODE)
        assert outcome == (("OK", None) if status == 200 else ("ERROR", status)), (status, span)
    assert not by_trace  # and no span without a call


def test_generated_chat_bodies_never_get_a_500_and_each_leaves_one_span(gw: RunningGateway) -> None:
    run_generated(gw, "/v1/chat/completions", chat_body, first_trace_id=0x1000)


def test_generated_embeddings_bodies_never_get_a_500_and_each_leaves_one_span(gw: RunningGateway) -> None:
    run_generated(gw, "/v1/embeddings", embeddings_body, first_trace_id=0x2000_0000)
