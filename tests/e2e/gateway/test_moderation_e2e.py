"""Content moderation end to end: the real gateway, the official openai client, a fake OpenAI
upstream and the loopback Content Safety stand-in."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from contracts import semconv as sc
from tests.e2e.deploy.test_cli import spangate
from tests.e2e.gateway.test_gateway_e2e import TAG, openai_model, tagged
from tests.support.content_safety import ContentSafetyStandIn, Fault
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.otlp import OtlpSink
from tests.support.proxy import LoopbackProxy
from tests.support.teams import new_key, new_team, ok
from tests.support.upstream import Behaviour, FakeOpenAI

MASTER = "sk-master-moderation-0123456789"
IN_MARK = "INPUT-MARK-31"  # flagged wherever it appears
OUT_MARK = "says: OUT-MARK-77"  # only in the fake's answer ("fake says: <prompt>"), never in the prompt


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def cs() -> Iterator[ContentSafetyStandIn]:
    with ContentSafetyStandIn(key="cs-e2e-key") as stand_in:
        stand_in.score(IN_MARK, Hate=6)
        stand_in.score(OUT_MARK, Violence=4)
        yield stand_in


def config(upstream: FakeOpenAI, cs: ContentSafetyStandIn, *, master: bool = False, teams: Any = None,
           **params: Any) -> dict[str, Any]:
    litellm: dict[str, Any] = {
        "callbacks": ["azure_content_safety"], "success_callback": ["file"], "failure_callback": ["file"],
        "azure_content_safety_params": {"endpoint": cs.endpoint, "key": "os.environ/CS_KEY", **params}}
    if teams is not None:
        litellm["default_team_settings"] = teams
    raw: dict[str, Any] = {"model_list": [openai_model("gpt", upstream),
                                          openai_model("emb", upstream, model="text-embedding-3-small")],
                           "litellm_settings": litellm}
    if master:
        raw["general_settings"] = {"master_key": MASTER}
    return raw


def gateway(tmp_path: Path, raw: dict[str, Any], **env: str) -> Any:
    return running_gateway(raw, data_dir=tmp_path, env={"CS_KEY": "cs-e2e-key", **env})


def client(gw: RunningGateway, key: str = "anything") -> OpenAI:
    return OpenAI(base_url=gw.openai_base_url, api_key=key, max_retries=0, timeout=10)


def span_of(gw: RunningGateway, tag: str) -> dict[str, Any]:
    [span] = gw.wait_for_spans(1, where=lambda s: s["attributes"].get(TAG) == tag)
    return span


def chat(api: OpenAI, text: str, tag: str, **kw: Any) -> Any:
    return api.chat.completions.create(model="gpt", messages=[{"role": "user", "content": text}],
                                       extra_body=tagged(tag), **kw)


def test_blocked_input_is_a_400_naming_it_and_the_model_is_never_called(
        tmp_path: Path, upstream: FakeOpenAI, cs: ContentSafetyStandIn) -> None:
    with gateway(tmp_path, config(upstream, cs)) as gw, client(gw) as api:
        with pytest.raises(openai.BadRequestError) as caught:
            chat(api, f"please {IN_MARK}", "blocked-input")
        span = span_of(gw, "blocked-input")
        metrics = httpx.get(gw.base_url + "/metrics").text
    error = caught.value.body
    assert caught.value.status_code == 400 and error["code"] == "moderation_blocked"
    assert (error["source"], error["category"], error["severity"]) == ("input", "Hate", 6)
    assert IN_MARK not in error["message"]
    assert upstream.requests == []
    assert cs.requests[0].headers["ocp-apim-subscription-key"] == "cs-e2e-key"
    attrs = span["attributes"]
    assert attrs[sc.ERROR_TYPE] == "moderation_blocked"
    assert (attrs[sc.MODERATION_BLOCKED], attrs[sc.MODERATION_SOURCE], attrs[sc.MODERATION_CATEGORY],
            attrs[sc.MODERATION_SEVERITY]) == (True, "input", "Hate", 6)
    assert attrs[sc.moderation_severity("input", "Hate")] == 6
    assert 'spangate_moderation_blocks_total{category="Hate",source="input"} 1' in metrics
    assert 'spangate_moderation_checks_total{outcome="blocked",source="input"} 1' in metrics


def test_blocked_output_is_a_400_and_the_answer_is_not_returned(
        tmp_path: Path, upstream: FakeOpenAI, cs: ContentSafetyStandIn) -> None:
    with gateway(tmp_path, config(upstream, cs)) as gw, client(gw) as api:
        with pytest.raises(openai.BadRequestError) as caught:
            chat(api, "OUT-MARK-77", "blocked-output")
        answer = chat(api, "a friendly question", "clean")
        blocked, clean = span_of(gw, "blocked-output"), span_of(gw, "clean")
    error = caught.value.body
    assert (error["source"], error["category"], error["severity"]) == ("output", "Violence", 4)
    assert "OUT-MARK" not in error["message"] and len(upstream.requests) == 2
    assert blocked["attributes"][sc.ERROR_TYPE] == "moderation_blocked"
    assert answer.choices[0].message.content == "fake says: a friendly question"
    assert clean["attributes"][sc.moderation_severity("output", "Violence")] == 0
    assert sc.MODERATION_BLOCKED not in clean["attributes"]


def test_embeddings_input_is_checked(tmp_path: Path, upstream: FakeOpenAI, cs: ContentSafetyStandIn) -> None:
    with gateway(tmp_path, config(upstream, cs)) as gw, client(gw) as api:
        with pytest.raises(openai.BadRequestError, match="moderation"):
            api.embeddings.create(model="emb", input=["fine", IN_MARK])
        assert len(api.embeddings.create(model="emb", input=["fine", "also fine"]).data) == 2
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("mode", ["window", "end"])
def test_a_flagged_stream_ends_with_an_error_and_a_clean_one_arrives_whole(
        tmp_path: Path, upstream: FakeOpenAI, cs: ContentSafetyStandIn, mode: str) -> None:
    with gateway(tmp_path, config(upstream, cs, stream_mode=mode, stream_window_chars=8)) as gw, client(gw) as api:
        text = "".join(c.choices[0].delta.content or "" for c in chat(api, "tell me a story", "s-ok", stream=True)
                       if c.choices)
        received = []
        with pytest.raises(openai.APIError, match="moderation"):
            for c in chat(api, "OUT-MARK-77 one two three", "s-bad", stream=True):
                received.append(c.choices[0].delta.content or "" if c.choices else "")
        span = span_of(gw, "s-bad")
    assert text == "fake says: tell me a story"
    assert span["attributes"][sc.ERROR_TYPE] == "moderation_blocked"
    assert span["attributes"][sc.MODERATION_SOURCE] == "output"
    if mode == "window":  # held back: nothing of the flagged window reached the client
        assert "OUT-MARK" not in "".join(received) and "fake says:".startswith("".join(received))
    else:  # streamed at once, cut at the end with the error instead of [DONE]
        assert "".join(received) == "fake says: OUT-MARK-77 one two three"


def test_a_long_input_is_split_and_every_part_checked(
        tmp_path: Path, upstream: FakeOpenAI, cs: ContentSafetyStandIn) -> None:
    long = " ".join(["fine"] * 5000)  # 24,999 characters: three parts
    with gateway(tmp_path, config(upstream, cs)) as gw, client(gw) as api:
        chat(api, long, "long")
        with pytest.raises(openai.BadRequestError):
            chat(api, long + " " + IN_MARK, "long-bad")
        span = span_of(gw, "long")
    assert span["attributes"][sc.moderation_parts("input")] == 3
    assert all(len(t) <= 10_000 for t in cs.texts)


@pytest.mark.parametrize(("fault", "reason"), [(Fault(status=500), "http_5xx"), (Fault(status=429), "http_429"),
                                               (Fault(delay=2.0), "timeout")])
def test_service_trouble_fails_closed_by_default_and_open_when_set(
        tmp_path: Path, upstream: FakeOpenAI, cs: ContentSafetyStandIn, fault: Fault, reason: str) -> None:
    cs.script(fault)
    with gateway(tmp_path / "closed", config(upstream, cs, timeout_seconds=0.5)) as gw, client(gw) as api:
        with pytest.raises(openai.InternalServerError) as caught:
            chat(api, "hello", "closed")
        span = span_of(gw, "closed")
    assert caught.value.status_code == 503 and caught.value.body["code"] == "moderation_unavailable"
    assert caught.value.response.headers["retry-after"]
    assert upstream.requests == [] and span["attributes"][sc.ERROR_TYPE] == "moderation_unavailable"
    cs.script(fault)
    with gateway(tmp_path / "open", config(upstream, cs, timeout_seconds=0.5, fail_open=True)) as gw, \
            client(gw) as api:
        assert chat(api, "hello", "open").choices[0].message.content == "fake says: hello"
        span = span_of(gw, "open")
        metrics = httpx.get(gw.base_url + "/metrics").text
    assert span["attributes"][sc.moderation_unavailable("input")] == reason
    assert f'spangate_moderation_fail_open_total{{reason="{reason}",source="input"}} 1' in metrics


def test_team_thresholds_and_exemption_through_the_admin_api(
        tmp_path: Path, upstream: FakeOpenAI, cs: ContentSafetyStandIn) -> None:
    cs.score("MILD-5", Sexual=2)
    with gateway(tmp_path, config(upstream, cs, master=True)) as gw, \
            httpx.Client(base_url=gw.base_url, headers={"Authorization": f"Bearer {MASTER}"}) as admin:
        strict = new_team(admin, metadata={"azure_content_safety_params": {"thresholds": {"Sexual": 2}}})
        free = new_team(admin, metadata={"azure_content_safety_params": {"exempt": True}})
        refused = admin.post("/team/new", json={"metadata": {"azure_content_safety_params": {"thresholds": {
            "Sexual": 9}}}})
        with client(gw, new_key(admin, team_id=strict)) as api_strict, \
                client(gw, new_key(admin, team_id=free)) as api_free, client(gw, MASTER) as api_global:
            chat(api_global, "MILD-5", "global")  # global threshold 4: passes
            with pytest.raises(openai.BadRequestError):
                chat(api_strict, "MILD-5", "strict")
            before = len(cs.requests)
            chat(api_free, f"{IN_MARK}", "free")  # exempt: not even checked
            assert len(cs.requests) == before
            ok(admin.post("/team/update", json={"team_id": free, "metadata": {}}))
            with pytest.raises(openai.BadRequestError):
                chat(api_free, f"{IN_MARK}", "free-again")
        assert span_of(gw, "free")["attributes"][sc.MODERATION_EXEMPT] is True
    assert refused.status_code == 400
    assert "metadata.azure_content_safety_params.thresholds.Sexual" in refused.json()["error"]["message"]


def test_the_service_call_is_a_child_span_of_the_gateway_span(
        tmp_path: Path, upstream: FakeOpenAI, cs: ContentSafetyStandIn) -> None:
    raw = config(upstream, cs)
    raw["litellm_settings"]["success_callback"] = ["otel"]
    with OtlpSink() as sink:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url, "OTEL_EXPORTER_OTLP_COMPRESSION": "none"}
        with gateway(tmp_path, raw, **env) as gw, client(gw) as api:
            chat(api, "hello", "traced")
            # The call's span ends last (after its guardrail and HTTP children): wait for it, not for a count,
            # since the children alone may fill any count first.
            sink.wait_for(lambda _reqs: any(s["name"] == "chat gpt" for s in sink.spans()), 10.0)
            spans = sink.spans()
    [call] = [s for s in spans if s["name"] == "chat gpt"]
    children = [s for s in spans if s["parent_span_id"] == call["span_id"]]
    moderation = [s for s in children if "contentsafety" in str(s["attributes"].get("url.full", ""))]
    assert len(moderation) == 2  # the input and the answer
    assert all("cs-e2e-key" not in str(s) for s in spans)


def test_a_threshold_outside_the_scale_stops_start_up_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("model_list:\n  - model_name: m\n    litellm_params: {model: mock/m}\n"
                    "litellm_settings:\n  callbacks: [azure_content_safety]\n"
                    "  azure_content_safety_params: {endpoint: 'https://cs.example', key: k,"
                    " thresholds: {SelfHarm: 8}}\n")
    result = spangate("--config", str(path), "--port", "1")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "litellm_settings.azure_content_safety_params.thresholds.SelfHarm: 8 is outside 0-7" in result.stderr


async def test_the_service_is_reached_through_the_egress_proxy(
        tmp_path: Path, upstream: FakeOpenAI, cs: ContentSafetyStandIn) -> None:
    async with LoopbackProxy() as proxy:
        raw = {**config(upstream, cs), "spangate_settings": {"upstream_proxy": proxy.url()}}
        with gateway(tmp_path, raw) as gw:
            async with AsyncOpenAI(base_url=gw.openai_base_url, api_key="x", max_retries=0, timeout=10) as api:
                with pytest.raises(openai.BadRequestError, match="moderation"):
                    await api.chat.completions.create(model="gpt", messages=[{"role": "user", "content": IN_MARK}])
    analyze = f"POST {cs.endpoint}/contentsafety/text:analyze?api-version=2023-10-01 HTTP/1.1".encode()
    assert proxy.seen.request_lines == [analyze]
    assert len(cs.requests) == 1 and upstream.requests == []


def test_failing_open_a_long_input_is_never_passed_unchecked(
        tmp_path: Path, upstream: FakeOpenAI, cs: ContentSafetyStandIn) -> None:
    cs.slow("LATE-PART", 5.0)
    flagged_then_late = f"{IN_MARK} " + "calm " * 2500 + "LATE-PART"  # part one flagged, part two too late
    raw = config(upstream, cs, fail_open=True, timeout_seconds=0.3, max_input_chars=20_000)
    with gateway(tmp_path, raw) as gw, client(gw) as api:
        with pytest.raises(openai.BadRequestError) as blocked:
            chat(api, flagged_then_late, "partly-checked")
        with pytest.raises(openai.APIStatusError) as too_long:
            chat(api, "calm " * 4001, "too-long")
        span = span_of(gw, "too-long")
    assert blocked.value.body["code"] == "moderation_blocked" and blocked.value.body["category"] == "Hate"
    assert too_long.value.status_code == 413 and too_long.value.body["code"] == "moderation_input_too_long"
    assert span["attributes"][sc.ERROR_TYPE] == "moderation_input_too_long"
    assert upstream.requests == []


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _user(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(parts)}]


_ASK = [{"role": "user", "content": "hello"}]
_FUNCTION = {"name": "lookup", "description": "looks things up"}
# Each puts IN_MARK where the model reads it and the gateway did not look.
FLAGGED_REQUESTS: dict[str, dict[str, Any]] = {
    "tool_description": {"messages": _ASK, "tools": [{"type": "function", "function": {
        **_FUNCTION, "description": IN_MARK}}]},
    "parameter_description": {"messages": _ASK, "tools": [{"type": "function", "function": {**_FUNCTION, "parameters": {
        "type": "object", "properties": {"q": {"type": "string", "description": IN_MARK}}}}}]},
    "tool_call_arguments": {"messages": [*_ASK, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": f'{{"q": "{IN_MARK}"}}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "done"}]},
    "refusal_part": {"messages": [*_ASK, {"role": "assistant", "content": [{"type": "refusal", "refusal": IN_MARK}]},
                                  *_ASK]},
    "unknown_part_type": {"messages": _user({"type": "input_text", "text": IN_MARK})},
    "message_name": {"messages": [{"role": "user", "content": "hello", "name": IN_MARK}]},
    "json_schema_description": {"messages": _ASK, "response_format": {"type": "json_schema", "json_schema": {
        "name": "answer", "schema": {"type": "object", "properties": {"a": {"type": "string",
                                                                             "description": IN_MARK}}}}}},
    "prediction": {"messages": _ASK, "prediction": {"type": "content", "content": IN_MARK}},
    "file_part": {"messages": _user({"type": "file", "file": {
        "filename": "notes.txt", "file_data": "data:text/plain;base64," + _b64(f"notes: {IN_MARK}")}})},
}


def test_every_text_the_model_reads_is_moderated(tmp_path: Path, upstream: FakeOpenAI,
                                                 cs: ContentSafetyStandIn) -> None:
    with gateway(tmp_path, config(upstream, cs)) as gw, httpx.Client(base_url=gw.openai_base_url, timeout=10) as http:
        answers = {name: http.post("/chat/completions", json={"model": "gpt", **body})
                   for name, body in FLAGGED_REQUESTS.items()}
        answers["suffix"] = http.post("/completions", json={"model": "gpt", "prompt": "hello", "suffix": IN_MARK})
    refused = {name: (a.status_code, a.json()["error"]["code"]) for name, a in answers.items()}
    assert refused == dict.fromkeys(answers, (400, "moderation_blocked"))
    assert upstream.requests == []


def _answer(**message: Any) -> bytes:
    return json.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": None, **message}}]}).encode()


def _event(delta: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
                                   "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}).encode() + b"\n\n"


_CALL = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": ""}}
_NAN = (b'data: {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini", "choices": '
        b'[{"index": 0, "delta": {"content": "' + OUT_MARK.encode() + b'"}, "finish_reason": null, '
        b'"logprobs": {"content": [{"token": "x", "logprob": NaN}]}}]}\n\n')
FLAGGED_STREAMS: dict[str, list[bytes]] = {
    "reasoning_content": [_event({"role": "assistant", "reasoning_content": "let me think: "}),
                          _event({"reasoning_content": OUT_MARK})],
    "tool_call_arguments": [_event({"role": "assistant", "tool_calls": [_CALL]}),
                            _event({"tool_calls": [{"index": 0, "function": {"arguments": f'{{"q": "{OUT_MARK}'}}]}),
                            _event({"tool_calls": [{"index": 0, "function": {"arguments": '"}'}}]})],
    "nan_chunk": [_event({"role": "assistant", "content": ""}), _NAN],
}


def test_every_text_the_model_writes_is_moderated_complete_and_streamed(
        tmp_path: Path, upstream: FakeOpenAI, cs: ContentSafetyStandIn) -> None:
    upstream.script(Behaviour(body=_answer(tool_calls=[{**_CALL, "function": {
                        "name": "lookup", "arguments": f'{{"q": "{OUT_MARK}"}}'}}])),
                    Behaviour(body=_answer(content="fine", reasoning_content=OUT_MARK)),
                    *(Behaviour(events=(*events, b"data: [DONE]\n\n")) for events in FLAGGED_STREAMS.values()))
    with gateway(tmp_path, config(upstream, cs)) as gw, httpx.Client(base_url=gw.openai_base_url, timeout=10) as http:
        complete = [http.post("/chat/completions", json={"model": "gpt", "messages": _ASK}) for _ in range(2)]
        streamed = {name: http.post("/chat/completions", json={"model": "gpt", "messages": _ASK, "stream": True}).text
                    for name in FLAGGED_STREAMS}
    assert [(a.status_code, a.json()["error"]["code"]) for a in complete] == [(400, "moderation_blocked")] * 2
    for name, text in streamed.items():
        assert "OUT-MARK" not in text and '"code":"moderation_blocked"' in text and "[DONE]" not in text, name


def test_a_stream_event_moderation_cannot_read_is_not_relayed(
        tmp_path: Path, upstream: FakeOpenAI, cs: ContentSafetyStandIn) -> None:
    unreadable = b"data: {\"choices\": [{\"delta\": {\"content\": \"" + OUT_MARK.encode() + b"\n\n"
    upstream.script(Behaviour(events=(_event({"role": "assistant", "content": "hello"}), unreadable,
                                      b"data: [DONE]\n\n")))
    with gateway(tmp_path, config(upstream, cs, stream_mode="end")) as gw, \
            httpx.Client(base_url=gw.openai_base_url, timeout=10) as http:
        text = http.post("/chat/completions", json={"model": "gpt", "messages": _ASK, "stream": True,
                                                    "metadata": tagged("unreadable")["metadata"]}).text
        span = span_of(gw, "unreadable")
    assert "OUT-MARK" not in text and '"code":"moderation_unreadable_event"' in text and "[DONE]" not in text
    assert span["attributes"][sc.ERROR_TYPE] == "moderation_unreadable_event"
    assert span["attributes"][sc.STREAM_OUTCOME] == sc.STREAM_UPSTREAM_INVALID_RESPONSE
