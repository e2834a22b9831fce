"""StreamAccumulator: SSE bytes pass through re-cut on event boundaries; the span's facts accumulate."""

import json
from typing import Any

from app import semconv as sc
from app.streaming import StreamAccumulator

BASE = {"id": "chatcmpl-s1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18"}
USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
         "prompt_tokens_details": {"cached_tokens": 3}}


def sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> bytes:
    return sse({**BASE, "choices": [{"index": index, "delta": delta, "finish_reason": finish}]})


TEXT_STREAM = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hel"}),
    chunk({"content": "lo"}),
    chunk({}, "stop"),
    sse({**BASE, "choices": [], "usage": USAGE}),
    b"data: [DONE]\n\n",
]


def run(events: list[bytes], *, keep_usage_chunk: bool, capture_content: bool = True,
        split: int | None = None, operation: str = sc.OP_CHAT) -> tuple[StreamAccumulator, bytes]:
    acc = StreamAccumulator(operation, keep_usage_chunk=keep_usage_chunk, capture_content=capture_content)
    data = b"".join(events)
    pieces = [data] if split is None else [data[i:i + split] for i in range(0, len(data), split)]
    out = b"".join(acc.feed(piece) for piece in pieces) + acc.flush()
    return acc, out


def test_text_stream_forwards_everything_when_the_client_asked_for_usage() -> None:
    acc, out = run(TEXT_STREAM, keep_usage_chunk=True)
    assert out == b"".join(TEXT_STREAM)
    assert acc.done
    assert acc.attributes() == {
        sc.RESPONSE_ID: "chatcmpl-s1", sc.RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        sc.RESPONSE_FINISH_REASONS: ("stop",), sc.USAGE_INPUT_TOKENS: 12, sc.USAGE_OUTPUT_TOKENS: 5,
        sc.USAGE_CACHE_READ_INPUT_TOKENS: 3,
        sc.OUTPUT_MESSAGES: '[{"role":"assistant","parts":[{"type":"text","content":"Hello"}],"finish_reason":"stop"}]',
    }


def test_the_usage_only_chunk_the_gateway_asked_for_is_stripped_but_still_recorded() -> None:
    acc, out = run(TEXT_STREAM, keep_usage_chunk=False)
    assert out == b"".join(e for e in TEXT_STREAM if b'"usage"' not in e)
    assert acc.attributes()[sc.USAGE_INPUT_TOKENS] == 12


def test_events_split_at_any_byte_boundary_come_out_whole_and_identical() -> None:
    whole, expected = run(TEXT_STREAM, keep_usage_chunk=True)
    for size in (1, 3, 7, 64):
        acc, out = run(TEXT_STREAM, keep_usage_chunk=True, split=size)
        assert out == expected, size
        assert acc.attributes() == whole.attributes()


def test_crlf_framing_is_understood_even_when_a_crlf_is_split_across_reads() -> None:
    events = [e.replace(b"\n", b"\r\n") for e in TEXT_STREAM]
    for split in (None, 1, 5):
        acc, out = run(events, keep_usage_chunk=False, split=split)
        assert acc.done and acc.usage == USAGE
        assert out == b"".join(e for e in TEXT_STREAM if b'"usage"' not in e)


def test_tool_call_deltas_are_assembled_per_call() -> None:
    events = [
        chunk({"role": "assistant", "tool_calls": [
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "time", "arguments": "{}"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}),
        chunk({}, "tool_calls"),
        b"data: [DONE]\n\n",
    ]
    acc, out = run(events, keep_usage_chunk=False)
    assert out == b"".join(events)
    assert json.loads(acc.attributes()[sc.OUTPUT_MESSAGES]) == [{
        "role": "assistant",
        "parts": [{"type": "text", "content": ""},
                  {"type": "tool_call", "arguments": '{"city":"Oslo"}', "id": "call_a", "name": "weather"},
                  {"type": "tool_call", "arguments": "{}", "id": "call_b", "name": "time"}],
        "finish_reason": "tool_calls",
    }]
    assert acc.attributes()[sc.RESPONSE_FINISH_REASONS] == ("tool_calls",)


def test_several_choices_are_kept_apart() -> None:
    events = [chunk({"content": "a"}, index=0), chunk({"content": "b"}, index=1),
              chunk({}, "stop", index=1), chunk({}, "length", index=0)]
    acc, _ = run(events, keep_usage_chunk=False)
    assert acc.attributes()[sc.RESPONSE_FINISH_REASONS] == ("length", "stop")
    assert [m["parts"][0]["content"] for m in json.loads(acc.attributes()[sc.OUTPUT_MESSAGES])] == ["a", "b"]


def test_without_content_capture_no_text_is_kept_at_all() -> None:
    acc, out = run(TEXT_STREAM, keep_usage_chunk=True, capture_content=False)
    assert out == b"".join(TEXT_STREAM)
    assert sc.OUTPUT_MESSAGES not in acc.attributes()
    assert acc.text == {} and acc.tool_calls == {}


def test_a_stream_without_usage_records_no_tokens() -> None:
    acc, _ = run([chunk({"content": "x"}), chunk({}, "stop"), b"data: [DONE]\n\n"], keep_usage_chunk=False)
    assert sc.USAGE_INPUT_TOKENS not in acc.attributes()
    assert sc.USAGE_OUTPUT_TOKENS not in acc.attributes()


def test_text_completion_stream_accumulates_text() -> None:
    def piece(text: str, finish: str | None) -> bytes:
        return sse({"id": "cmpl-1", "model": "m", "choices": [{"index": 0, "text": text, "finish_reason": finish}]})

    events = [piece("once", None), piece(" upon", "length"), b"data: [DONE]\n\n"]
    acc, _ = run(events, keep_usage_chunk=False, operation=sc.OP_TEXT_COMPLETION)
    assert json.loads(acc.attributes()[sc.OUTPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": "once upon"}]


def test_comments_and_undecodable_events_are_forwarded_untouched() -> None:
    events = [b": keep-alive\n\n", b"data: {not json\n\n", b"event: ping\ndata: 1\n\n", chunk({"content": "x"})]
    acc, out = run(events, keep_usage_chunk=False)
    assert out == b"".join(events)
    assert acc.chunks == 1
    assert acc.flush() == b""
