"""Streams through the hook's filters: held back in windows (the default), or checked at the end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from app.hooks.moderation import ModerationBlocked, ModerationUnavailable, ModerationUnreadable
from app.hooks.moderation.stream import EndFilter, WindowFilter
from contracts import semconv as sc
from tests.app.hooks.moderation.support import chat_call, rig
from tests.support.content_safety import ContentSafetyStandIn, Fault

MARK = "FLAGGED-91"
DONE = b"data: [DONE]\n\n"


def chunk(text: str | None, *, finish: str | None = None) -> bytes:
    delta = {} if text is None else {"content": text}
    body = {"id": "c1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def events(*texts: str) -> list[bytes]:
    return [chunk(None), *(chunk(t) for t in texts), chunk(None, finish="stop"), DONE]


@pytest.fixture
def cs() -> Iterator[ContentSafetyStandIn]:
    with ContentSafetyStandIn() as stand_in:
        yield stand_in


async def relay(stream_filter: object, pieces: list[bytes]) -> tuple[list[bytes], BaseException | None]:
    """What the client gets, piece by piece, and the error the stream ended with (as the relay would)."""
    sent: list[bytes] = []
    try:
        for piece in pieces:
            sent.append(await stream_filter.feed(piece))  # type: ignore[attr-defined]
        sent.append(await stream_filter.end())  # type: ignore[attr-defined]
    except (ModerationBlocked, ModerationUnavailable, ModerationUnreadable) as exc:
        return sent, exc
    return sent, None


async def test_window_mode_is_the_default_and_a_clean_stream_arrives_whole(cs: ContentSafetyStandIn) -> None:
    pieces = events("Hello ", "there, ", "how are ", "you today?")
    async with rig(cs, stream_window_chars=12) as r:
        (stream_filter,) = r.chain.stream_filters(chat_call("hi", stream=True))
        assert isinstance(stream_filter, WindowFilter)
        sent, error = await relay(stream_filter, pieces)
    assert error is None and b"".join(sent) == b"".join(pieces)
    assert sent[0] == b"" and sent[1] == b""  # held until the first window (12 characters) was checked
    assert len(cs.requests) == 2


async def test_window_mode_never_sends_a_flagged_window(cs: ContentSafetyStandIn) -> None:
    cs.score(MARK, Violence=6)
    pieces = events("A calm start. ", "Still calm.. ", f"then {MARK} ", "and more text")
    async with rig(cs, stream_window_chars=12) as r:
        call = chat_call("hi", stream=True)
        (stream_filter,) = r.chain.stream_filters(call)
        sent, error = await relay(stream_filter, pieces)
    assert isinstance(error, ModerationBlocked) and error.fields == {"source": "output", "category": "Violence",
                                                                      "severity": 6}
    assert MARK.encode() not in b"".join(sent)
    assert call.extra[sc.MODERATION_SOURCE] == "output"


async def test_windows_checked_before_a_flagged_one_reach_the_client_first(cs: ContentSafetyStandIn) -> None:
    cs.score(MARK, Violence=6)
    async with rig(cs, stream_window_chars=12) as r:
        (stream_filter,) = r.chain.stream_filters(chat_call("hi", stream=True))
        assert await stream_filter.feed(chunk("A calm start. ")) == b""
        first = await released(stream_filter)
        assert b"A calm start." in first
        assert await stream_filter.feed(chunk(f"then {MARK} ")) == b""
        with pytest.raises(ModerationBlocked):
            await released(stream_filter)
        with pytest.raises(ModerationBlocked):  # and the stream stays ended
            await stream_filter.end()


async def released(stream_filter: WindowFilter, timeout: float = 5.0) -> bytes:
    """Feeds nothing until the held windows' checks are done and their events come out."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        out = await stream_filter.feed(b"")
        if out:
            return out
        await asyncio.sleep(0.005)
    raise AssertionError("no window released")


async def test_a_phrase_cut_by_the_window_edge_is_read_whole(cs: ContentSafetyStandIn) -> None:
    cs.score(MARK, Hate=6)
    half = len(MARK) // 2
    pieces = events("x" * 11 + MARK[:half], MARK[half:] + " tail")
    async with rig(cs, stream_window_chars=12) as r:
        (stream_filter,) = r.chain.stream_filters(chat_call("hi", stream=True))
        _sent, error = await relay(stream_filter, pieces)
    assert isinstance(error, ModerationBlocked)


async def test_window_mode_fail_closed_and_fail_open(cs: ContentSafetyStandIn) -> None:
    pieces = events("some answer text")
    cs.script(Fault(status=500))
    async with rig(cs) as r:
        (stream_filter,) = r.chain.stream_filters(chat_call("hi", stream=True))
        sent, error = await relay(stream_filter, pieces)
    assert isinstance(error, ModerationUnavailable) and b"".join(sent) == b""
    cs.script(Fault(status=500))
    async with rig(cs, fail_open=True) as r:
        call = chat_call("hi", stream=True)
        (stream_filter,) = r.chain.stream_filters(call)
        sent, error = await relay(stream_filter, pieces)
    assert error is None and b"".join(sent) == b"".join(pieces)
    assert call.extra[sc.moderation_unavailable("output")] == "http_5xx"


async def test_end_mode_streams_at_once_and_holds_only_done(cs: ContentSafetyStandIn) -> None:
    pieces = events("Hello ", "there")
    async with rig(cs, stream_mode="end") as r:
        (stream_filter,) = r.chain.stream_filters(chat_call("hi", stream=True))
        assert isinstance(stream_filter, EndFilter)
        sent, error = await relay(stream_filter, pieces)
    assert error is None
    assert sent[:-2] == pieces[:-1] and sent[-2] == b"" and sent[-1] == DONE
    assert cs.texts == ["Hello there"]


async def test_end_mode_cuts_a_flagged_answer_with_an_error_instead_of_done(cs: ContentSafetyStandIn) -> None:
    cs.score(MARK, SelfHarm=4)
    pieces = events("one ", MARK, " two")
    async with rig(cs, stream_mode="end") as r:
        (stream_filter,) = r.chain.stream_filters(chat_call("hi", stream=True))
        sent, error = await relay(stream_filter, pieces)
    assert isinstance(error, ModerationBlocked) and error.fields["category"] == "SelfHarm"
    assert DONE not in b"".join(sent)


async def test_pieces_cut_inside_an_event_are_joined(cs: ContentSafetyStandIn) -> None:
    whole = b"".join(events("abc ", "def"))
    pieces = [whole[i:i + 7] for i in range(0, len(whole), 7)]
    async with rig(cs, stream_window_chars=3) as r:
        (stream_filter,) = r.chain.stream_filters(chat_call("hi", stream=True))
        sent, error = await relay(stream_filter, pieces)
    assert error is None and b"".join(sent) == whole
    # Each window read with the end of the one before. Windows are checked concurrently (up to four
    # in flight), so the stand-in may receive them in either order.
    assert sorted(cs.texts) == ["abc ", "abc def"]


async def test_an_exempt_team_gets_no_filter(cs: ContentSafetyStandIn) -> None:
    async with rig(cs, [{"team_id": "t", "azure_content_safety_params": {"exempt": True}}]) as r:
        assert r.chain.stream_filters(chat_call("hi", team_id="t", stream=True)) == []


async def test_a_fast_stream_waits_for_checks_beyond_four_windows_in_flight(cs: ContentSafetyStandIn) -> None:
    cs.delay = 0.1
    async with rig(cs, stream_window_chars=1) as r:
        (stream_filter,) = r.chain.stream_filters(chat_call("hi", stream=True))
        for word in "abcdefgh":
            await stream_filter.feed(chunk(word))
        await stream_filter.end()
    assert len(cs.requests) == 8 and cs.max_in_flight == 5  # four held, plus the one just cut


async def test_end_mode_checks_a_long_answer_in_batches_and_cuts_at_a_flagged_one(cs: ContentSafetyStandIn) -> None:
    cs.score(MARK, Hate=6)
    async with rig(cs, stream_mode="end") as r:
        (hook,) = r.chain.hooks
        clean = chat_call("hi", stream=True)
        stream_filter = EndFilter(hook, clean, hook.policy(clean), batch_chars=10)
        sent, error = await relay(stream_filter, events("0123456789", "abcdefghij", "tail"))
        assert error is None and sent[-1] == DONE
        assert sorted(cs.texts) == ["0123456789", "0123456789abcdefghij", "0123456789abcdefghijtail"]  # overlap
        flagged = chat_call("hi", stream=True)
        stream_filter = EndFilter(hook, flagged, hook.policy(flagged), batch_chars=10)
        _sent, error = await relay(stream_filter, events(f"{MARK} ok", "x" * 10, "y" * 10, "z" * 10, "end"))
    assert isinstance(error, ModerationBlocked)


def delta_chunk(delta: dict[str, object]) -> bytes:
    body = {"id": "c1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def tool_call(arguments: str) -> dict[str, object]:
    return {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                            "function": {"name": "f", "arguments": arguments}}]}


@pytest.mark.parametrize("mode", ["window", "end"])
@pytest.mark.parametrize("delta", [{"reasoning_content": f"thinking {MARK}"}, tool_call(f'{{"q": "{MARK}"}}'),
                                   {"refusal": f"no {MARK}"}], ids=["reasoning", "tool_call", "refusal"])
async def test_reasoning_tool_call_arguments_and_refusals_are_checked(
        cs: ContentSafetyStandIn, mode: str, delta: dict[str, object]) -> None:
    cs.score(MARK, Hate=6)
    async with rig(cs, stream_mode=mode) as r:
        (stream_filter,) = r.chain.stream_filters(chat_call("hi", stream=True))
        sent, error = await relay(stream_filter, [chunk(None), delta_chunk(delta), chunk(None, finish="stop"), DONE])
    assert isinstance(error, ModerationBlocked)
    assert DONE not in b"".join(sent)
    if mode == "window":
        assert MARK.encode() not in b"".join(sent)


async def test_an_event_with_nan_is_read_as_a_client_reads_it(cs: ContentSafetyStandIn) -> None:
    cs.score(MARK, Hate=6)
    nan = (b'data: {"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": '
           b'{"content": "say ' + MARK.encode() + b'"}, "logprobs": {"content": [{"logprob": NaN}]}}]}\n\n')
    json.loads(nan[6:])  # what the openai client does with it: it reads the text
    async with rig(cs) as r:
        (stream_filter,) = r.chain.stream_filters(chat_call("hi", stream=True))
        sent, error = await relay(stream_filter, [chunk(None), nan, chunk(None, finish="stop"), DONE])
    assert isinstance(error, ModerationBlocked) and MARK.encode() not in b"".join(sent)


@pytest.mark.parametrize("mode", ["window", "end"])
async def test_an_event_nobody_can_read_is_not_passed_on_and_ends_the_stream(
        cs: ContentSafetyStandIn, mode: str) -> None:
    garbage = b"data: {\"choices\": [{\"delta\": {\"content\": \"" + MARK.encode() + b"\n\n"
    async with rig(cs, stream_mode=mode, stream_window_chars=5) as r:
        call = chat_call("hi", stream=True)
        (stream_filter,) = r.chain.stream_filters(call)
        sent, error = await relay(stream_filter, [chunk("before "), garbage, chunk("after"), DONE])
        assert r.counts(sc.METRIC_MODERATION_CHECKS)[(("outcome", "unreadable"), ("source", "output"))] == 1
    assert isinstance(error, ModerationUnreadable) and error.status == 502
    assert error.code == "moderation_unreadable_event"
    out = b"".join(sent)
    assert MARK.encode() not in out and b"after" not in out and DONE not in out
    assert call.extra[sc.moderation_unavailable("output")] == "unreadable_event"
    if mode == "window":  # the window before it was checked and sent
        assert b"before " in out
