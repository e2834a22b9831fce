"""Generated Responses requests: translation raises nothing but ``InvalidRequest`` and, when it translates,
loses no message, content part, tool call, tool output or tool; generated chat answers and chunk streams
always come out as something the ``openai`` SDK's models accept."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.responses import Response

from app.dialects.responses import ResponsesDialect
from app.errors import InvalidRequest

DIALECT = ResponsesDialect()
SETTINGS = settings(max_examples=300, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

_text = st.text(max_size=6)
_junk = st.one_of(st.none(), st.integers(), _text, st.lists(st.integers(), max_size=2),
                  st.dictionaries(_text, st.integers(), max_size=2))
_in_part = st.one_of(
    st.builds(lambda t: {"type": "input_text", "text": t}, _text),
    st.builds(lambda t: {"type": "output_text", "text": t}, _text),
    st.builds(lambda d: {"type": "input_image", "image_url": "https://example.test/a.png", **d},
              st.sampled_from([{}, {"detail": "low"}])),
    st.just({"type": "input_file", "file_id": "file-1"}),
    st.builds(lambda t: {"type": t}, st.sampled_from(["input_audio", "input_image", "refusal"])),  # missing fields
)
_content = st.one_of(_text, st.lists(_in_part, max_size=3), _junk)
_message = st.builds(lambda r, c, typed: {**({"type": "message"} if typed else {}), "role": r, "content": c},
                     st.sampled_from(["user", "assistant", "system", "developer", "tool"]), _content, st.booleans())
_call = st.builds(lambda i, n, a: {"type": "function_call", "call_id": f"call_{i}", "name": n, "arguments": a},
                  st.integers(0, 5), st.sampled_from(["f", "g"]), st.one_of(st.just("{}"), _junk))
_output = st.builds(lambda i, o: {"type": "function_call_output", "call_id": f"call_{i}", "output": o},
                    st.integers(0, 5), _content)
_item = st.one_of(_message, _message, _call, _output, st.just({"type": "reasoning", "summary": []}),
                  st.builds(lambda t: {"type": t}, st.sampled_from(["item_reference", "web_search_call"])), _junk)
_tool = st.one_of(
    st.builds(lambda n, s: {"type": "function", "name": n, "parameters": {"type": "object"}, "strict": s},
              st.sampled_from(["f", "g"]), st.booleans()),
    st.builds(lambda t: {"type": t}, st.sampled_from(["web_search", "file_search", "function"])), _junk)
requests = st.fixed_dictionaries(
    {"model": st.one_of(st.just("m"), _junk), "input": st.one_of(_text, st.lists(_item, max_size=6), _junk)},
    optional={"instructions": st.one_of(_text, _junk), "tools": st.one_of(st.lists(_tool, max_size=3), _junk),
              "tool_choice": st.one_of(st.sampled_from(["auto", "none", "required", "any"]),
                                       st.just({"type": "function", "name": "f"}), _junk),
              "text": st.one_of(st.just({"format": {"type": "json_object"}}), _junk),
              "reasoning": st.one_of(st.just({"effort": "low"}), _junk), "stream": st.one_of(st.booleans(), _junk),
              "store": st.booleans(), "background": st.one_of(st.booleans(), _junk), "metadata": _junk,
              "max_output_tokens": st.one_of(st.integers(), _junk), "previous_response_id": st.none()})


# Well-formed requests only (the junk above stops most at the first field): every draw reaches the item,
# part and tool translation.
_good_part = st.one_of(st.builds(lambda t: {"type": "input_text", "text": t}, _text),
                       st.just({"type": "input_image", "image_url": "data:image/png;base64,iVBOR", "detail": "auto"}),
                       st.just({"type": "input_file", "file_data": "data:application/pdf;base64,JVBE"}))
_good_content = st.one_of(_text, st.lists(_good_part, min_size=1, max_size=3))
_good_item = st.one_of(
    st.builds(lambda r, c: {"role": r, "content": c}, st.sampled_from(["user", "system", "developer"]),
              _good_content),
    st.builds(lambda t: {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": t}]},
              _text),
    st.builds(lambda i: {"type": "function_call", "call_id": f"call_{i}", "name": "f", "arguments": "{}"},
              st.integers(0, 5)),
    st.builds(lambda i, o: {"type": "function_call_output", "call_id": f"call_{i}", "output": o},
              st.integers(0, 5), _good_content))
well_formed = st.fixed_dictionaries(
    {"model": st.just("m"), "input": st.one_of(_text, st.lists(_good_item, min_size=1, max_size=6))},
    optional={"instructions": _text, "stream": st.booleans(), "store": st.booleans(),
              "tools": st.lists(st.builds(lambda n: {"type": "function", "name": n}, st.sampled_from("fg")),
                                max_size=2),
              "tool_choice": st.sampled_from(["auto", "none", "required", {"type": "function", "name": "f"}])})


def _parts(content: Any) -> int:
    return 1 if isinstance(content, str) else len(content)


@SETTINGS
@given(requests)
def test_generated_requests_raise_only_invalid_request_and_lose_nothing(body: dict[str, Any]) -> None:
    try:
        chat = DIALECT.to_chat(body)
    except InvalidRequest as refused:
        assert refused.param, refused  # every 400 names the Responses field it is about
        return
    items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
    messages = [i for i in items if i.get("type", "message") == "message"]
    sent = chat["messages"][1:] if "instructions" in body else chat["messages"]
    turns = [m for m in sent if m["role"] != "tool" and m.get("content") is not None]
    assert sum(_parts(m["content"]) for m in turns) == sum(_parts(m["content"]) for m in messages)
    assert sum(len(m.get("tool_calls", [])) for m in sent) == sum(i.get("type") == "function_call" for i in items)
    assert [m["tool_call_id"] for m in sent if m["role"] == "tool"] == [
        i["call_id"] for i in items if i.get("type") == "function_call_output"]
    assert len(chat.get("tools", [])) == len(body.get("tools") or [])
    json.dumps(chat)


@SETTINGS
@given(well_formed)
def test_well_formed_requests_always_translate_and_keep_everything(body: dict[str, Any]) -> None:
    DIALECT.to_chat(body)  # no 400 for any of these
    test_generated_requests_raise_only_invalid_request_and_lose_nothing.hypothesis.inner_test(body)


_usage = st.one_of(st.none(), st.fixed_dictionaries({"prompt_tokens": st.integers(0, 99),
                                                     "completion_tokens": st.integers(0, 99)}))
_finish = st.sampled_from([None, "stop", "length", "tool_calls", "content_filter"])
_tool_delta = st.builds(lambda i, name, args: {"index": i, **({"id": f"call_{i}"} if name else {}),
                                               "function": {**({"name": name} if name else {}), "arguments": args}},
                        st.integers(0, 2), st.sampled_from([None, "f"]), _text)
_delta = st.fixed_dictionaries({}, optional={"content": st.one_of(st.none(), _text), "refusal": _text,
                                             "reasoning_content": _text,
                                             "tool_calls": st.lists(_tool_delta, max_size=2)})
_chunks = st.lists(st.builds(lambda d, f, u: {"choices": [{"index": 0, "delta": d, "finish_reason": f}],
                                              **({"usage": u} if u else {})}, _delta, _finish, _usage), max_size=8)


@SETTINGS
@given(_chunks, _usage)
def test_generated_streams_end_in_a_response_the_sdk_validates(chunks: list[dict[str, Any]], usage: Any) -> None:
    stream = DIALECT.stream({"model": "m", "input": "hi"})
    out = b"".join(stream.feed({"created": 1, "model": "m", **c}) for c in chunks) + stream.close()
    got = [json.loads(block.split(b"\ndata: ", 1)[1]) for block in out.split(b"\n\n") if block]
    assert [e["sequence_number"] for e in got] == list(range(len(got)))
    final = Response.model_validate(got[-1]["response"])
    added = [e["item"]["id"] for e in got if e["type"] == "response.output_item.added"]
    done = [e["item"]["id"] for e in got if e["type"] == "response.output_item.done"]
    assert sorted(added) == sorted(done) == sorted(item.id for item in final.output if item.id)
    text = "".join(e["delta"] for e in got if e["type"] == "response.output_text.delta")
    assert text == "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)


@SETTINGS
@given(st.fixed_dictionaries({"content": st.one_of(st.none(), _text), "reasoning_content": st.one_of(st.none(), _text)},
                             optional={"tool_calls": st.lists(st.builds(
                                 lambda i: {"id": f"call_{i}", "type": "function",
                                            "function": {"name": "f", "arguments": "{}"}}, st.integers()),
                                 max_size=2), "refusal": _text}), _finish, _usage)
def test_generated_answers_are_responses_the_sdk_validates(message: dict[str, Any], finish: Any, usage: Any) -> None:
    chat = {"created": 1, "model": "m", "choices": [{"message": message, "finish_reason": finish}], "usage": usage}
    response = Response.model_validate(DIALECT.answer(chat, {"model": "m"}))
    assert len([i for i in response.output if i.type == "function_call"]) == len(message.get("tool_calls") or [])
