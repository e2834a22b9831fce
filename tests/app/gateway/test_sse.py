"""StreamAccumulator: SSE bytes pass through re-cut on event boundaries; the span's facts accumulate."""

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import UpstreamInvalidResponse, UpstreamResponseTooLarge
from app.gateway.sse import MAX_CAPTURED_CHARS, StreamAccumulator
from contracts import semconv as sc

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


# --- framing: any split, any line ending --------------------------------------------------------

FRAMINGS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}


@pytest.mark.parametrize("framing", FRAMINGS)
def test_one_split_at_every_byte_position_gives_the_same_events_and_facts(framing: str) -> None:
    events = [e.replace(b"\n", FRAMINGS[framing]) for e in TEXT_STREAM]
    data = b"".join(events)
    whole, expected = run(TEXT_STREAM, keep_usage_chunk=True)
    for cut in range(len(data) + 1):
        acc = StreamAccumulator(sc.OP_CHAT, keep_usage_chunk=True, capture_content=True)
        out = acc.feed(data[:cut]) + acc.feed(data[cut:]) + acc.flush()
        assert (out, acc.attributes(), acc.done) == (expected, whole.attributes(), True), (framing, cut)


@settings(max_examples=300, deadline=None)
@given(endings=st.lists(st.sampled_from(list(FRAMINGS.values())), min_size=len(TEXT_STREAM),
                        max_size=len(TEXT_STREAM)),
       cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12))
def test_any_mix_of_line_endings_cut_anywhere_gives_the_same_events(endings: list[bytes], cuts: list[int]) -> None:
    data = b"".join(e.replace(b"\n", ending) for e, ending in zip(TEXT_STREAM, endings, strict=True))
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    acc = StreamAccumulator(sc.OP_CHAT, keep_usage_chunk=True, capture_content=True)
    out = b"".join(acc.feed(data[a:b]) for a, b in itertools.pairwise(bounds)) + acc.flush()
    assert out == b"".join(TEXT_STREAM)
    assert acc.done and acc.usage == USAGE and acc.skipped == 0


def test_a_last_event_without_its_blank_line_is_read_and_terminated() -> None:
    acc = StreamAccumulator(sc.OP_CHAT, keep_usage_chunk=False, capture_content=True)
    assert acc.feed(chunk({"content": "x"}) + b"data: [DONE]") == chunk({"content": "x"})
    assert not acc.done
    assert acc.flush() == b"data: [DONE]\n\n"
    assert acc.done


def test_a_stream_without_done_is_not_marked_done() -> None:
    acc, out = run([chunk({"content": "x"}), chunk({}, "stop")], keep_usage_chunk=False)
    assert not acc.done and acc.error is None
    assert out == chunk({"content": "x"}) + chunk({}, "stop")


# --- size bounds ---------------------------------------------------------------------------------

READ = 64 * 1024


def test_each_byte_is_searched_once_however_long_an_event_grows() -> None:
    # 20 MB without a blank line in 64 KiB reads; the old feed searched ~6.7 GB (its whole buffer each read).
    acc = StreamAccumulator(sc.OP_CHAT, keep_usage_chunk=False, capture_content=True, max_event_bytes=1 << 30)
    piece = b"data: " + b"x" * (READ - 7) + b"\n"
    reads = 320
    assert all(acc.feed(piece) == b"" for _ in range(reads))
    assert acc.scanned == reads * READ
    assert acc.error is None


def test_an_event_that_grows_past_the_cap_ends_the_stream_after_about_cap_bytes() -> None:
    acc = StreamAccumulator(sc.OP_CHAT, keep_usage_chunk=False, capture_content=True)  # 1 MiB by default
    first = chunk({"content": "kept"})
    assert acc.feed(first + b"data: ") == first
    piece = b"y" * READ
    fed = 0
    while acc.error is None and fed < 50 * 1024 * 1024:  # 50 MB would follow; the cap stops it long before
        assert acc.feed(piece) == b""
        fed += READ
    assert isinstance(acc.error, UpstreamResponseTooLarge)
    assert fed == 16 * READ  # 16 reads reach 1 MiB + the 6 bytes of "data: ": over the cap
    assert "spangate_settings.max_sse_event_bytes" in acc.error.message
    scanned = acc.scanned
    assert acc.feed(piece + b"\n\n") == b"" and acc.flush() == b""
    assert acc.scanned == scanned  # nothing more is read


def test_a_whole_event_over_the_cap_in_one_read_is_refused_and_earlier_events_still_pass() -> None:
    acc = StreamAccumulator(sc.OP_CHAT, keep_usage_chunk=False, capture_content=True, max_event_bytes=2048)
    first = chunk({"content": "kept"})
    big = chunk({"content": "z" * 2048})
    assert acc.feed(first + big + chunk({"content": "never"})) == first
    assert acc.error is not None and acc.error.code == "upstream_response_too_large"
    assert acc.text == {0: ["kept"]}


def test_captured_output_stops_at_the_capture_cap_and_says_it_was_truncated() -> None:
    part = "a" * (MAX_CAPTURED_CHARS // 2 + 1)
    acc, out = run([chunk({"content": part}), chunk({"content": part}), chunk({"content": "more"}),
                    chunk({}, "stop")], keep_usage_chunk=False)
    attrs = acc.attributes()
    assert len(json.loads(attrs[sc.OUTPUT_MESSAGES])[0]["parts"][0]["content"]) == MAX_CAPTURED_CHARS
    assert attrs[sc.OUTPUT_TRUNCATED] is True
    assert sum(map(len, acc.text[0])) == MAX_CAPTURED_CHARS and len(acc.text[0]) == 2  # nothing kept past the cap
    assert out.count(b"data: ") == 4  # the client still gets every chunk


def test_many_tool_call_argument_pieces_are_joined_once() -> None:
    events = [chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": ""}}]})]
    events += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": "ab"}}]})] * 5000
    acc, _ = run(events, keep_usage_chunk=False)
    [message] = json.loads(acc.attributes()[sc.OUTPUT_MESSAGES])
    assert message["parts"][1] == {"type": "tool_call", "arguments": "ab" * 5000, "id": "c", "name": "f"}


# --- malformed upstream content ------------------------------------------------------------------


def _raw_chunk(**fields: Any) -> bytes:
    return sse({**BASE, **fields})


UNRELAYABLE = {
    "choices is a string": _raw_chunk(choices="x"),
    "choices is an object": _raw_chunk(choices={"index": 0}),
    "a choice is a string": _raw_chunk(choices=["x"]),
    "delta is a string": _raw_chunk(choices=[{"index": 0, "delta": "hi"}]),
    "tool_calls is an object": _raw_chunk(choices=[{"index": 0, "delta": {"tool_calls": {"index": 0}}}]),
    "a tool call is a number": _raw_chunk(choices=[{"index": 0, "delta": {"tool_calls": [3]}}]),
    "usage is a list": _raw_chunk(choices=[], usage=[1, 2]),
}


@pytest.mark.parametrize("bad", UNRELAYABLE.values(), ids=UNRELAYABLE.keys())
@pytest.mark.parametrize("capture_content", [True, False])
def test_a_chunk_no_client_can_read_stops_the_stream_with_an_error(bad: bytes, capture_content: bool) -> None:
    first = chunk({"content": "ok"})
    acc, out = run([first, bad, chunk({"content": "after"}), b"data: [DONE]\n\n"], keep_usage_chunk=True,
                   capture_content=capture_content)
    assert out == first
    assert isinstance(acc.error, UpstreamInvalidResponse) and acc.error.code == "upstream_invalid_response"
    assert not acc.done
    acc.attributes()  # still readable for the span


READABLE_WITH_GAPS = {
    "content is a list of parts": (_raw_chunk(choices=[{"index": 0, "delta": {"content": [{"text": "x"}]}}]), 1),
    "content is a number": (_raw_chunk(choices=[{"index": 0, "delta": {"content": 5}}]), 1),
    "finish_reason is a number": (_raw_chunk(choices=[{"index": 0, "delta": {}, "finish_reason": 1}]), 1),
    "index is a string": (_raw_chunk(choices=[{"index": "0", "delta": {"content": "x"}}]), 1),
    "index is true": (_raw_chunk(choices=[{"index": True, "delta": {"content": "x"}}]), 1),
    "index far out": (_raw_chunk(choices=[{"index": 10**9, "delta": {"content": "x"}}]), 1),
    "id and model are numbers": (_raw_chunk(id=1, model=2, choices=[]), 2),
    "function is a string": (_raw_chunk(choices=[{"index": 0, "delta": {"tool_calls": [{"function": "f"}]}}]), 1),
    "arguments is an object": (_raw_chunk(choices=[{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"name": "f", "arguments": {"a": 1}}}]}}]), 1),
    "data is not JSON": (b"data: {not json\n\n", 1),
    "data is a JSON list": (b"data: [1, 2]\n\n", 1),
    "nulls everywhere": (_raw_chunk(id=None, choices=[{"index": None, "delta": None, "finish_reason": None}],
                                    usage=None), 0),
}


@pytest.mark.parametrize(("odd", "skipped"), READABLE_WITH_GAPS.values(), ids=READABLE_WITH_GAPS.keys())
def test_values_of_the_wrong_type_are_skipped_counted_and_passed_on(odd: bytes, skipped: int) -> None:
    events = [odd, chunk({"content": "ok"}), chunk({}, "stop"), b"data: [DONE]\n\n"]
    acc, out = run(events, keep_usage_chunk=False)
    assert out == b"".join(events)
    assert acc.error is None and acc.done
    assert acc.skipped == skipped
    attrs = acc.attributes()
    assert attrs.get(sc.STREAM_SKIPPED, 0) == skipped
    assert json.loads(attrs[sc.OUTPUT_MESSAGES])[0]["parts"][0]["content"] == "ok"
