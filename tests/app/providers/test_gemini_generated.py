"""Generated OpenAI chat requests through the Gemini dialect: a request it cannot translate is an
``InvalidRequest`` (a 400), never another exception; a conversation it translates loses no message,
content part or tool, and is one Google's API (as the fake checks it) accepts."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.calls.operations import Operation
from app.errors import InvalidRequest
from app.providers.gemini import GeminiDialect, GeminiRoute
from app.providers.gemini.request import chat_body
from tests.support import openai_bodies
from tests.support.gemini_checks import check_generate

DIALECT = GeminiDialect("m", GeminiRoute("https://g.test", "m", "k"))


@settings(max_examples=300, deadline=None)
@given(body=openai_bodies.chat_body, data=st.data())
def test_any_generated_request_is_translated_or_refused_with_a_400(body: dict[str, Any], data: st.DataObject) -> None:
    body = openai_bodies.mutate(body, data)
    try:
        built = DIALECT.request(Operation.CHAT, body, stream=bool(data.draw(st.booleans())))
    except InvalidRequest as exc:
        assert exc.status == 400
    else:
        assert json.loads(built.body)["contents"]


# --- conversations an OpenAI client would send --------------------------------------------------------

text = st.text(max_size=8)
name = st.text(alphabet="abcdefghij_", min_size=1, max_size=6)
part = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, text),
    st.sampled_from([{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                     {"type": "image_url", "image_url": "https://example.test/a.png"},
                     {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "mp3"}}]))
content = st.one_of(text, st.lists(part, min_size=1, max_size=3))
arguments = st.dictionaries(name, st.one_of(st.integers(), text), max_size=2).map(json.dumps)


@st.composite
def turn(draw: st.DrawFn, n: int) -> list[dict[str, Any]]:
    """A user message, sometimes a system one before it, and sometimes an assistant turn with tool
    calls followed by one tool result per call (in any order), or a plain assistant answer."""
    out: list[dict[str, Any]] = []
    if draw(st.booleans()):
        out.append({"role": draw(st.sampled_from(["system", "developer"])), "content": draw(text)})
    out.append({"role": "user", "content": draw(content)})
    calls = draw(st.lists(st.tuples(name, arguments), max_size=3))
    if calls:
        ids = [f"call_{n}_{k}" for k in range(len(calls))]
        made = [{"id": i, "type": "function", "function": {"name": f, "arguments": a}}
                for i, (f, a) in zip(ids, calls, strict=True)]
        out.append({"role": "assistant", "content": draw(st.one_of(st.none(), text)), "tool_calls": made})
        out += [{"role": "tool", "tool_call_id": i, "content": draw(text)} for i in draw(st.permutations(ids))]
    elif draw(st.booleans()):
        out.append({"role": "assistant", "content": draw(text)})
    return out


conversation = st.integers(1, 3).flatmap(lambda k: st.tuples(*(turn(i) for i in range(k)))).map(
    lambda turns: [m for t in turns for m in t])
tools = st.lists(name, max_size=3, unique=True).map(
    lambda names: [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}} for n in names])


def _expected_parts(message: dict[str, Any]) -> int:
    if message["role"] == "tool":
        return 1
    body = message.get("content")
    texts = len(body) if isinstance(body, list) else (0 if message["role"] == "assistant" and not body else 1)
    return max(1, texts + len(message.get("tool_calls") or []))


@settings(max_examples=300, deadline=None)
@given(messages=conversation, tool_list=tools)
def test_a_conversation_loses_no_message_part_or_tool_and_google_accepts_it(
        messages: list[dict[str, Any]], tool_list: list[dict[str, Any]]) -> None:
    body = chat_body({"messages": messages, **({"tools": tool_list} if tool_list else {})})
    system = [m for m in messages if m["role"] in ("system", "developer")]
    others = [m for m in messages if m not in system]
    assert len(body.get("systemInstruction", {}).get("parts", [])) == len(system)
    assert sum(len(c["parts"]) for c in body["contents"]) == sum(_expected_parts(m) for m in others)
    parts = [p for c in body["contents"] for p in c["parts"]]
    assert sum("functionCall" in p for p in parts) == sum(len(m.get("tool_calls") or []) for m in others)
    assert sum("functionResponse" in p for p in parts) == sum(m["role"] == "tool" for m in others)
    declared = body.get("tools", [{"functionDeclarations": []}])[0]["functionDeclarations"]
    assert [d["name"] for d in declared] == [t["function"]["name"] for t in tool_list]
    assert check_generate(body) is None
