"""Moderating a streamed answer: the two ``stream_mode`` filters.

``WindowFilter`` (the default) holds events back until the text they carry has been checked. Text
is cut into windows of ``stream_window_chars``; each window is checked (with the last
``OVERLAP_CHARS`` of the one before, so a phrase cut by the window edge is still read whole) while
the next one fills (at most ``MAX_WINDOWS_IN_FLIGHT`` at once), and a window's events are released,
in order, once its check has passed. A blocked window is never sent: the stream ends with the error
event. The cost is latency: the client's first bytes wait for one window of text and one check.

``EndFilter`` passes every event through at once except ``data: [DONE]``, checks the assembled
answer when the upstream is done, and sends ``[DONE]`` only if it passed; otherwise the stream ends
with the error event instead. The client has seen the text by then: the cut only tells it so. An
answer over ``END_BATCH_CHARS`` is checked in batches as it streams (so its text is not all kept
in memory), and a batch that fails cuts the stream there.

Both see the SSE bytes the relay forwards (complete events, LF line endings); a piece cut inside an
event is joined with the next before it is read. The text of an event is every string of each
choice's delta (``texts.message_text``: content, ``reasoning_content``, ``refusal``, tool call
arguments). An event whose data the decoder rejects is read again as leniently as a client reads it
(Python's ``json`` takes ``NaN``; bytes that are not UTF-8 are replaced); one that still cannot be
read is never relayed unchecked: the stream ends there with ``ModerationUnreadable``.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Coroutine, Mapping
from typing import Any, Protocol

import msgspec

from app.calls.record import CallRecord
from app.hooks.moderation.settings import Policy
from app.hooks.moderation.texts import message_text, walk
from contracts import semconv as sc

OVERLAP_CHARS = 200
MAX_WINDOWS_IN_FLIGHT = 4  # per stream
END_BATCH_CHARS = 100_000  # end mode: a longer answer is checked in batches as it streams
_DONE = b"[DONE]"
_decode = msgspec.json.decode


class Moderator(Protocol):
    """What a filter asks of its hook (``hook.ContentSafetyHook``). Declared here, not imported, so
    the hook that builds the filters is the only one of the two that imports the other."""

    async def check(self, call: CallRecord, source: str, text: str, policy: Policy) -> None: ...

    def spawn(self, check: Coroutine[Any, Any, None]) -> asyncio.Task[None]: ...

    def unreadable(self, call: CallRecord) -> Exception: ...


class Unreadable(Exception):
    """An event's data that no JSON reader takes: its text cannot be checked."""


class _Events:
    """Cuts forwarded bytes into whole events and reads the answer text out of each."""

    def __init__(self, operation: str) -> None:
        self._chat = operation == sc.OP_CHAT
        self._partial = b""

    def split(self, piece: bytes) -> list[bytes]:
        data = self._partial + piece if self._partial else piece
        end = data.rfind(b"\n\n")
        if end == -1:
            self._partial = data
            return []
        self._partial = data[end + 2:]
        return [event + b"\n\n" for event in data[:end].split(b"\n\n")]

    def rest(self) -> bytes:
        rest, self._partial = self._partial, b""
        return rest

    def text(self, event: bytes) -> str:
        """The answer text the event carries; ``Unreadable`` when its data is not JSON."""
        data = _data(event)
        if not data or data == _DONE:
            return ""
        chunk = _lenient(data)
        if not isinstance(chunk, dict):  # a bare string or array: whatever text it holds
            return "".join(walk(chunk))
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return ""
        return "".join(_choice_text(choice, self._chat) for choice in choices)


def _lenient(data: bytes) -> Any:
    """msgspec first (fast, strict); then as a client reads it: ``NaN`` and ``Infinity`` taken, bytes
    that are not UTF-8 replaced, as httpx decodes them."""
    try:
        return _decode(data)
    except msgspec.DecodeError:
        pass
    try:
        return json.loads(data.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        raise Unreadable from None


def is_done(event: bytes) -> bool:
    return _data(event) == _DONE


def _data(event: bytes) -> bytes | None:
    lines = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines).strip() if lines else None


def _choice_text(choice: Any, chat: bool) -> str:
    if not isinstance(choice, Mapping):
        return ""
    if chat:
        return message_text(choice.get("delta"))
    value = choice.get("text")
    return value if isinstance(value, str) else ""


class WindowFilter:
    def __init__(self, hook: Moderator, call: CallRecord, policy: Policy, window_chars: int) -> None:
        self._hook = hook
        self._call = call
        self._policy = policy
        self._window = window_chars
        self._events = _Events(call.operation)
        self._held: list[bytes] = []  # events of the window being filled
        self._text: list[str] = []
        self._size = 0
        self._tail = ""  # the end of the last window, read again with the next
        # Windows cut, in order: their check (None: no text to check; an error: the stream ends there)
        # and their events.
        self._checking: deque[tuple[asyncio.Task[None] | Exception | None, bytes]] = deque()
        self._failed: Exception | None = None
        self._stopped = False  # an unreadable event came: nothing after it is read or sent

    async def feed(self, piece: bytes) -> bytes:
        for event in self._events.split(piece):
            if self._stopped:
                break
            self._take(event)
        return await self._release(keep=0 if self._stopped else MAX_WINDOWS_IN_FLIGHT)

    async def end(self) -> bytes:
        rest = self._events.rest()
        if rest and not self._stopped:
            self._take(rest)
        self._cut()
        out = await self._release(keep=0)
        if self._failed is not None:  # the relay calls ``end`` once: what passed and the error cannot both go
            raise self._failed        # back, so the passed windows are dropped with it
        return out

    def _take(self, event: bytes) -> None:
        """Holds the event in the window being filled. An unreadable one is not held: the windows
        before it are checked and sent, then the stream ends with its error."""
        try:
            text = self._events.text(event)
        except Unreadable:
            self._cut()
            self._checking.append((self._hook.unreadable(self._call), b""))
            self._stopped = True
            return
        self._held.append(event)
        if text:
            self._text.append(text)
            self._size += len(text)
            if self._size >= self._window:
                self._cut()

    def _cut(self) -> None:
        if not self._held:
            return
        task = None
        if self._text:
            new = "".join(self._text)
            text = self._tail + new
            self._tail = text[-OVERLAP_CHARS:]
            task = self._hook.spawn(self._hook.check(self._call, sc.MODERATION_OUTPUT, text, self._policy))
        self._checking.append((task, b"".join(self._held)))
        self._held, self._text, self._size = [], [], 0

    async def _release(self, *, keep: int) -> bytes:
        """The events of the windows checked so far, in order, waiting while more than ``keep`` are
        still being checked (a fast upstream is slowed to the checks' pace instead of opening a check
        per window at once). A window that failed its check ends the stream: the windows before it
        are sent first, the error on the next call."""
        if self._failed is not None:
            raise self._failed
        out = []
        while self._checking:
            check, data = self._checking[0]
            if isinstance(check, asyncio.Task) and not check.done() and len(self._checking) <= keep:
                break
            try:
                if isinstance(check, Exception):
                    raise check
                if check is not None:
                    await check
            except BaseException as exc:  # ModerationBlocked / Unavailable / Unreadable (or cancelled)
                self._checking.clear()  # later windows' checks finish on their own (see ``spawn``)
                if isinstance(exc, Exception):
                    self._failed = exc
                if not out:
                    raise
                break
            self._checking.popleft()
            out.append(data)
        return b"".join(out)


class EndFilter:
    def __init__(self, hook: Moderator, call: CallRecord, policy: Policy,
                 batch_chars: int = END_BATCH_CHARS) -> None:
        self._hook = hook
        self._call = call
        self._policy = policy
        self._batch = batch_chars
        self._events = _Events(call.operation)
        self._text: list[str] = []
        self._size = 0
        self._tail = ""
        self._checks: deque[asyncio.Task[None]] = deque()
        self._done: bytes | None = None

    async def feed(self, piece: bytes) -> bytes:
        out = []
        for event in self._events.split(piece):
            if is_done(event):
                self._done = event  # held: sent only once the answer has passed
                continue
            self._read(event)
            out.append(event)
        if self._size >= self._batch:  # a long answer is checked as it goes: its text is not all kept
            self._start()
            await self._settle(keep=MAX_WINDOWS_IN_FLIGHT)
        return b"".join(out)

    async def end(self) -> bytes:
        rest = self._events.rest()
        if rest:  # a last event without its blank line is read like the others
            self._read(rest)
        if self._text:
            self._start()
        await self._settle(keep=0)
        return rest + (self._done or b"")

    def _read(self, event: bytes) -> None:
        """Keeps the event's text for the check; an unreadable event ends the stream before it is sent."""
        try:
            text = self._events.text(event)
        except Unreadable:
            raise self._hook.unreadable(self._call) from None
        if text:
            self._text.append(text)
            self._size += len(text)

    def _start(self) -> None:
        text = self._tail + "".join(self._text)
        self._tail = text[-OVERLAP_CHARS:]
        self._checks.append(self._hook.spawn(self._hook.check(self._call, sc.MODERATION_OUTPUT, text, self._policy)))
        self._text, self._size = [], 0

    async def _settle(self, *, keep: int) -> None:
        """Waits for the oldest checks while more than ``keep`` run; a failed one ends the stream."""
        while self._checks and (len(self._checks) > keep or self._checks[0].done()):
            task = self._checks.popleft()
            try:
                await task
            except BaseException:
                self._checks.clear()
                raise
