"""Generated request bodies against the real gateway: no body, however bad, gets a 500 or goes unrecorded.

Bodies come from a schema-like strategy of OpenAI's chat and embeddings requests in which any field,
at any depth, is sometimes junk (wrong types, negative and huge numbers, nulls, unicode, 20000-deep
nesting), and then a field is sometimes dropped or added. Each request carries its own W3C trace
id, so after the run every call's span is found by trace id without waiting per request: exactly
one span each, ERROR with the answer's status for a rejected call, OK for an answered one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import semconv as sc
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.openai_bodies import CHAT_MODEL, EMBEDDING_MODEL, chat_body, embeddings_body, encode, mutate

SETTINGS = settings(max_examples=160, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    config = {"model_list": [{"model_name": name, "litellm_params": {"model": f"mock/{name}"}}
                             for name in (CHAT_MODEL, EMBEDDING_MODEL)],
              "litellm_settings": {"success_callback": ["file"], "failure_callback": ["file"]}}
    with running_gateway(config, data_dir=tmp_path_factory.mktemp("generated")) as running:
        yield running


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
