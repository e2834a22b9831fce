"""Generated OpenAI chat requests -> Converse: nothing but ``InvalidRequest`` is ever raised, and every
message, content part, tool call, tool result and tool reaches the Converse body, in order."""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.errors import InvalidRequest
from app.providers.bedrock.request import converse_body

text = st.text(max_size=12)
png = "data:image/png;base64," + base64.b64encode(b"\x89PNG....").decode()
image_url = st.sampled_from([png, "data:image/jpeg;base64,AAAA", "https://x.test/i.png", "data:image/tiff;base64,AA",
                             "data:image/png;base64,@@@"])
text_part = st.builds(lambda t: {"type": "text", "text": t}, text)
image_part = st.builds(lambda u: {"type": "image_url", "image_url": {"url": u}}, image_url)
odd_part = st.sampled_from([{"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}},
                            {"type": "file", "file": {"file_id": "f"}}, {"type": "refusal", "refusal": "no"}, "bare"])
user_content = st.one_of(text, st.lists(st.one_of(text_part, image_part, odd_part), max_size=3))
arguments = st.one_of(st.builds(json.dumps, st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)),
                      st.sampled_from(["", "[1]", "not json", "null"]))
tool_call = st.builds(lambda i, n, a: {"id": i, "type": "function", "function": {"name": n, "arguments": a}},
                      st.text(min_size=1, max_size=4), st.sampled_from(["weather", "time"]), arguments)
assistant = st.builds(lambda c, calls: {"role": "assistant", "content": c, **({"tool_calls": calls} if calls else {})},
                      st.one_of(st.none(), text, st.lists(st.one_of(text_part, odd_part), max_size=2)),
                      st.lists(tool_call, max_size=2))
message = st.one_of(
    st.builds(lambda r, c: {"role": r, "content": c}, st.sampled_from(["system", "developer"]),
              st.one_of(text, st.lists(st.one_of(text_part, image_part), max_size=2))),
    st.builds(lambda c: {"role": "user", "content": c}, user_content), assistant,
    st.builds(lambda i, c: {"role": "tool", "tool_call_id": i, "content": c}, st.text(max_size=4),
              st.one_of(text, st.lists(text_part, max_size=2))),
    st.sampled_from([{"role": "function", "name": "f", "content": "x"}, {"role": "critic", "content": "x"}]))
tool = st.builds(lambda n, d: {"type": "function", "function": {"name": n, **({"description": d} if d else {}),
                                                                "parameters": {"type": "object"}}},
                 st.sampled_from(["weather", "time"]), st.one_of(st.none(), text))
# Typed as the gateway's validation lets them through (app.gateway.validation), values Converse may refuse.
extras = st.fixed_dictionaries({}, optional={
    "seed": st.one_of(st.none(), st.integers(0, 3)), "top_k": st.integers(0, 50), "user": text,
    "n": st.integers(1, 3), "temperature": st.floats(0, 2), "stop": st.one_of(text, st.lists(text, max_size=4)),
    "logprobs": st.booleans(), "response_format": st.sampled_from([{"type": "text"}, {"type": "json_object"}]),
    "guardrailConfig": st.just({"guardrailIdentifier": "g", "guardrailVersion": "1"}),
    "stream_options": st.just({"include_usage": True}), "max_tokens": st.integers(0, 100)})
request = st.builds(lambda m, t, c, e: {"model": "m", "messages": m, **({"tools": t} if t else {}),
                                        **({"tool_choice": c} if c else {}), **e},
                    st.lists(message, min_size=1, max_size=6), st.lists(tool, max_size=2),
                    st.sampled_from([None, "auto", "none", "required",
                                     {"type": "function", "function": {"name": "weather"}}]), extras)


def expected_blocks(messages: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """What each message must become: system texts, and the kinds of the turns' blocks, in order."""
    system, turns = [], []
    for m in messages:
        content = m.get("content")
        parts = [content] if isinstance(content, str) else list(content or [])
        if m["role"] in ("system", "developer"):
            system += ["text"] * len(parts)
        elif m["role"] == "user":
            turns += ["image" if isinstance(p, dict) and p["type"] == "image_url" else "text" for p in parts]
        elif m["role"] == "assistant":
            turns += ["text"] * len([p for p in parts if p != ""]) + ["toolUse"] * len(m.get("tool_calls", []))
        else:
            turns.append("toolResult")
    return system, turns


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request)
def test_translation_raises_only_invalid_request_and_loses_nothing(payload: dict[str, Any]) -> None:
    try:
        body = converse_body(payload)
    except InvalidRequest as refused:
        assert refused.status == 400 and refused.param
        return
    system, turns = expected_blocks(payload["messages"])
    assert [next(iter(b)) for b in body.get("system", [])] == system
    assert [next(iter(b)) for m in body["messages"] for b in m["content"]] == turns
    roles = [m["role"] for m in body["messages"]]
    assert all(a != b for a, b in itertools.pairwise(roles))  # merged: Converse wants them alternating
    sent_tools = body.get("toolConfig", {}).get("tools", [])
    assert len(sent_tools) == len(payload.get("tools", [])) or payload.get("tool_choice") == "none"
    json.dumps(body)  # what goes on the wire is plain JSON
