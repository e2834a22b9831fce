"""Differential tests: ``Http11Transport`` against httpx's default transport (httpcore + h11) on generated answers.

A scripted loopback server (``tests/support/scripted_http.py``) plays one generated raw answer to
a first request; the same exchange runs through both transports, each with its own server and a
fresh transport. Then a second request goes through the same transport and must get its own
answer (``own:<marker>``): bytes of exchange 1 must never reach exchange 2.

Rules tested, and where they are not plain "same as h11":
- Exchange 1: same status, same header list (names' case and order as received) and the same body
  bytes, or an httpx ``TransportError`` from both (kinds may differ and are not compared). Where
  the generator knows the right outcome, it is checked too, so a shared mistake still fails.
- Field values come without surrounding whitespace (RFC 9110 §5.5: it is not part of the value),
  as h11 gives them. h11 lowercases the Transfer-Encoding value (coding names are case-insensitive,
  RFC 9112 §7), so that one value is compared lowercased.
- Duplicate identical ``Content-Length`` (two fields, or ``n, n``): RFC 9110 §8.6 lets a recipient
  reject it or collapse it to one value. h11 collapses and rewrites the value to ``n``, so header
  lists are compared with Content-Length collapsed, and a refusal by the transport is accepted.
- ``Content-Length`` with ``Transfer-Encoding: chunked``: RFC 9112 §6.3 (3) says chunked wins and
  that the message "ought to be handled as an error"; h11 decodes it as chunked. The transport may
  do either, but must not reuse that connection (§6.1: smuggling). h11 reuses it: the reference
  is not held to that.
- Reuse: after a complete, well-framed HTTP/1.1 answer without ``Connection: close`` (server still
  open) the second request must come on the same connection; after an error, a close-delimited body,
  ``Connection: close``, an HTTP/1.0 answer without keep-alive, a server-side close, or bytes
  beyond the answer, it must come on a new one. HTTP/1.0 keep-alive may be honoured or not
  (RFC 9112 §9.3; h11 never reuses it).
- Bytes after a complete answer (pipelined leftovers, a body after 204/304): a client asked
  for nothing, so the connection is unusable; the answer itself was complete and is delivered
  (as h11 does). The test waits (on the server's event) until every byte of exchange 1 has been
  written before sending request 2; a transport must notice them then (httpcore asks the socket
  whether it is readable before reusing an idle connection). The reference is not held to this
  rule: httpcore hands bytes h11 already buffered to the next request.
- Request side: a header value with CR, LF or NUL, or a name that is not an RFC 9110 token, is
  refused by both with an httpx error before any byte of that request is written.
- Not generated, because h11 departs from RFC 9112 or the RFC leaves it open: whitespace before a
  chunk extension's ``;`` (BWS, h11 rejects it), obs-fold in fields, bare-LF line endings,
  transfer codings other than chunked.

Split points are one TCP write each (``TCP_NODELAY``, drained, a few loop turns between writes,
which in practice makes each one a read of its own for both transports); no assertion depends on
how reads were split.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from app.providers.http11 import Http11Transport
from tests.support.scripted_http import FIRST, OWN_PREFIX, Play, ScriptedServer, own_path

DEADLINE = 5.0  # a wait on the server's events; never reached when things work
TIMEOUTS = {"connect": 5.0, "read": 2.0, "write": 5.0, "pool": 5.0}
EXCHANGE_DEADLINE = 15.0
EXAMPLES = settings(database=None, deadline=None, max_examples=40, report_multiple_bugs=False)
LEFTOVER = b"LEFTOVER"


class Reuse(enum.Enum):
    MUST = "must"
    MAY = "may"
    NEVER = "never"


class Expect(enum.Enum):
    ANSWER = "answer"
    ERROR = "error"
    EITHER = "either"  # RFC 9110/9112 allow a refusal; an answer must still agree with the reference


@dataclass(frozen=True)
class Case:
    play: Play
    expect: Expect
    body: bytes  # the body of a correct answer (when one is expected)
    reuse: Reuse
    reference_exempt: bool = False  # h11/httpcore known to break the second-exchange rules here


@dataclass(frozen=True)
class Answer:
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


@dataclass(frozen=True)
class Failed:
    kind: str
    message: str


Outcome = Answer | Failed


@dataclass(frozen=True)
class Run:
    first: Outcome
    second: Outcome
    second_connection: int | None  # which accepted connection carried request 2
    marker: str


# --- generated answers ----------------------------------------------------------------------------

STATUSES = (200, 201, 400, 401, 404, 429, 500, 502, 503)
NO_BODY = (204, 304)
REASONS = (b" OK", b" Whatever It Says", b" ", b"")
OWS = (b"", b" ", b"  ", b"\t")
EXTRA_NAMES = (b"x-request-id", b"set-cookie", b"openai-processing-ms", b"x-dup", b"x-ratelimit-remaining-requests")
value_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=12)


@st.composite
def spelled(draw: st.DrawFn, name: bytes) -> bytes:
    style = draw(st.sampled_from(("lower", "title", "upper", "random")))
    if style == "random":
        flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
        return bytes(c ^ 0x20 if flip and chr(c).isalpha() else c for c, flip in zip(name.lower(), flips, strict=True))
    return {"lower": name.lower(), "title": name.title(), "upper": name.upper()}[style]


@st.composite
def field(draw: st.DrawFn, name: bytes, value: bytes) -> bytes:
    return draw(spelled(name)) + b":" + draw(st.sampled_from(OWS)) + value + draw(st.sampled_from(OWS[:2])) + b"\r\n"


@st.composite
def extra_field(draw: st.DrawFn) -> bytes:
    words = draw(st.lists(value_text, max_size=3))
    obs_text = draw(st.sampled_from((b"", b"", b"\xe9t\xe9")))
    return draw(field(draw(st.sampled_from(EXTRA_NAMES)), " ".join(words).encode() + obs_text))


@st.composite
def payload(draw: st.DrawFn) -> bytes:
    size = draw(st.one_of(st.integers(0, 80), st.integers(0, 64 * 1024)))
    return random.Random(draw(st.integers(0, 2**32))).randbytes(size)


def pieces(data: bytes, points: list[int]) -> tuple[bytes, ...]:
    """``data`` cut at the sorted ``points``, without empty pieces."""
    return tuple(data[a:b] for a, b in itertools.pairwise([0, *points, len(data)]) if b > a)


@st.composite
def chunk_line(draw: st.DrawFn, size: int) -> bytes:
    digits = (b"%x" if draw(st.booleans()) else b"%X") % size
    extension = draw(st.sampled_from((b"", b"", b";ext", b";name=value", b';q="a b"', b";a=1;b")))
    return b"0" * draw(st.integers(0, 2)) + digits + extension + b"\r\n"


@st.composite
def chunked(draw: st.DrawFn, body: bytes) -> bytes:
    cuts = sorted(set(draw(st.lists(st.integers(1, len(body) - 1), max_size=8)))) if len(body) > 1 else []
    out = b"".join(draw(chunk_line(len(p))) + p + b"\r\n" for p in pieces(body, cuts))
    trailers = b"".join(draw(st.lists(field(b"x-trailer", b"done"), max_size=2)))
    return out + draw(chunk_line(0)) + trailers + b"\r\n"


@st.composite
def interims(draw: st.DrawFn) -> bytes:
    kinds = (b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 102 Processing\r\n\r\n",
             b"HTTP/1.1 103 Early Hints\r\n" + draw(field(b"link", b"</a.css>; rel=preload")) + b"\r\n")
    return b"".join(draw(st.lists(st.sampled_from(kinds), max_size=2)))


@dataclass(frozen=True)
class Message:
    head: bytes  # interim answers, status line, fields, the empty line
    framed: bytes  # the body as sent
    body: bytes  # the body as a client returns it
    reuse: Reuse  # what the answer allows if the server keeps the connection open
    framing: str


@st.composite
def messages(draw: st.DrawFn, keep_alive: bool = False) -> Message:
    """A complete, well-framed answer; ``keep_alive`` for one that allows reuse."""
    version = b"HTTP/1.1" if keep_alive else draw(st.sampled_from((b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0")))
    status = draw(st.one_of(st.sampled_from(STATUSES + NO_BODY), st.integers(200, 599)))
    framings = ("none",) if status in NO_BODY else ("length", "chunked", "close")
    if version == b"HTTP/1.0" or keep_alive:
        framings = tuple(f for f in framings if f != ("chunked" if version == b"HTTP/1.0" else "close"))
    framing = draw(st.sampled_from(framings))
    body = b"" if framing == "none" else draw(payload())
    fields = [draw(field(b"content-type", b"application/json"))]
    fields += draw(st.lists(extra_field(), max_size=3))
    if framing == "length":
        fields.append(draw(field(b"content-length", b"%d" % len(body))))
    elif framing == "chunked":
        fields.append(draw(field(b"transfer-encoding", draw(spelled(b"chunked")))))
    elif framing == "none" and draw(st.booleans()):  # a 304's length of the representation, no body
        fields.append(draw(field(b"content-length", b"%d" % draw(st.integers(1, 5000)))))
    connection = None if keep_alive else draw(st.sampled_from((None, b"close", b"keep-alive")))
    if connection is not None:
        fields.append(draw(field(b"connection", draw(spelled(connection)))))
    line = version + b" %d" % status + draw(st.sampled_from(REASONS)) + b"\r\n"
    head = draw(interims()) + line + b"".join(draw(st.permutations(fields))) + b"\r\n"
    framed = draw(chunked(body)) if framing == "chunked" else body
    if framing == "close" or connection == b"close":
        reuse = Reuse.NEVER
    elif version == b"HTTP/1.0":
        reuse = Reuse.MAY if connection == b"keep-alive" else Reuse.NEVER
    else:
        reuse = Reuse.MUST
    return Message(head, framed, body, reuse, framing)


@st.composite
def split(draw: st.DrawFn, wire: bytes, close: bool) -> Play:
    points = sorted(set(draw(st.lists(st.integers(1, max(1, len(wire) - 1)), max_size=6))))
    return Play(pieces(wire, points), close)


@st.composite
def well_framed(draw: st.DrawFn) -> Case:
    message = draw(messages())
    close = message.framing == "close" or draw(st.sampled_from((False, False, True)))
    play = draw(split(message.head + message.framed, close))
    return Case(play, Expect.ANSWER, message.body, Reuse.NEVER if close else message.reuse)


@st.composite
def cut_short(draw: st.DrawFn) -> Case:
    message = draw(messages())
    wire = message.head + message.framed
    cut = draw(st.integers(0, len(wire) - 1))
    if message.framing == "close" and cut >= len(message.head):  # nothing tells a cut from the end
        return Case(draw(split(wire[:cut], True)), Expect.ANSWER, message.body[:cut - len(message.head)], Reuse.NEVER)
    return Case(draw(split(wire[:cut], True)), Expect.ERROR, b"", Reuse.NEVER)


GARBAGE = (b"HTTP/1.1 2000 OK\r\n\r\n", b"HTTP/1.1 20 OK\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n", b"HTTP/1.1\r\n\r\n",
           b"hello world\r\n\r\n", b"<html><body>502</body></html>\r\n\r\n",
           b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
           b"HTTP/1.1 200 OK\r\n: no name\r\n\r\n", b"HTTP/1.1 200 OK\r\nX Y: space in name\r\n\r\n",
           b"HTTP/1.1 200 OK\r\nX-Nul: a\x00b\r\n\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")


@st.composite
def garbage(draw: st.DrawFn) -> Case:
    junk = draw(st.one_of(st.sampled_from(GARBAGE),
                          st.binary(min_size=1, max_size=300).filter(lambda b: not b.startswith(b"H"))))
    return Case(draw(split(junk, True)), Expect.ERROR, b"", Reuse.NEVER)


INVALID_LENGTHS = (b"abc", b"-1", b"+5", b"0x10", b"1 2", b"", b"99999999999999999999999")


@st.composite
def length_conflicts(draw: st.DrawFn) -> Case:
    body = draw(payload())
    n = len(body)
    kind = draw(st.sampled_from(("duplicate", "list", "conflicting", "list-conflicting", "invalid", "chunked")))
    other = b"%d" % draw(st.integers(0, 70000).filter(lambda m: m != n))
    values = {"duplicate": [b"%d" % n, b"%d" % n], "list": [b"%d, %d" % (n, n)],
              "conflicting": [b"%d" % n, other], "list-conflicting": [b"%d, " % n + other],
              "invalid": [draw(st.sampled_from(INVALID_LENGTHS))],
              "chunked": [draw(st.sampled_from((b"%d" % n, other)))]}[kind]
    fields = [draw(field(b"content-length", v)) for v in values]
    framed = body
    if kind == "chunked":
        fields.append(draw(field(b"transfer-encoding", b"chunked")))
        framed = draw(chunked(body))
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(draw(st.permutations(fields))) + b"\r\n"
    play = draw(split(head + framed, draw(st.booleans())))
    if kind in ("duplicate", "list"):
        return Case(play, Expect.EITHER, body, Reuse.NEVER if play.close else Reuse.MAY)
    if kind == "chunked":
        return Case(play, Expect.EITHER, body, Reuse.NEVER, reference_exempt=True)
    return Case(play, Expect.ERROR, b"", Reuse.NEVER)


@st.composite
def with_leftovers(draw: st.DrawFn) -> Case:
    message = draw(messages(keep_alive=True))
    extra = draw(st.sampled_from((LEFTOVER, b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n" + LEFTOVER,
                                  b"HTTP/1.1 100 Continue\r\n\r\n" + LEFTOVER)))
    if message.framing == "none":  # a 204/304 that sends a body anyway: the body is the leftover
        extra = b"%d" % len(extra) + extra if draw(st.booleans()) else extra
    play = draw(split(message.head + message.framed + extra, False))
    return Case(play, Expect.ANSWER, message.body, Reuse.NEVER, reference_exempt=True)


# --- running one case through a transport ---------------------------------------------------------


async def exchange(transport: httpx.AsyncBaseTransport, url: str,
                   headers: list[tuple[bytes, bytes]] | None = None) -> Outcome:
    request = httpx.Request("POST", url, content=b'{"model": "m"}', extensions={"timeout": TIMEOUTS},
                            headers=[(b"Content-Type", b"application/json"), *(headers or [])])
    try:
        # A transport that ignores its read timeout fails the test here instead of hanging it.
        return await asyncio.wait_for(_exchange(transport, request), EXCHANGE_DEADLINE)
    except httpx.TransportError as exc:
        return Failed(type(exc).__name__, str(exc))


async def _exchange(transport: httpx.AsyncBaseTransport, request: httpx.Request) -> Answer:
    response = await transport.handle_async_request(request)
    try:
        body = b"".join([part async for part in response.aiter_raw()])
    finally:
        await response.aclose()
    return Answer(response.status_code, tuple(response.headers.raw), body)


async def run(make: Callable[[], httpx.AsyncBaseTransport], play: Play) -> Run:
    marker = secrets.token_hex(6)
    async with ScriptedServer(play) as server:
        transport = make()
        try:
            first = await exchange(transport, server.url(FIRST))
            await asyncio.wait_for(server.played.wait(), DEADLINE)
            second = await exchange(transport, server.url(own_path(marker)))
        finally:
            await transport.aclose()
        await server.wait_all_closed(DEADLINE)
        return Run(first, second, server.connection_of(marker), marker)


def both(case: Case) -> tuple[Run, Run]:
    async def main() -> tuple[Run, Run]:
        return await run(httpx.AsyncHTTPTransport, case.play), await run(Http11Transport, case.play)
    return asyncio.run(main())


# --- the rules ------------------------------------------------------------------------------------


def collapsed(headers: tuple[tuple[bytes, bytes], ...]) -> list[tuple[bytes, bytes]]:
    """The fields as h11 hands them on: duplicate identical Content-Lengths as one field with one
    value, and the Transfer-Encoding value lowercased (coding names are case-insensitive)."""
    out, seen = [], False
    for name, value in headers:
        if name.lower() == b"content-length":
            if seen:
                continue
            seen, value = True, value.split(b",")[0].strip()
        elif name.lower() == b"transfer-encoding":
            value = value.lower()
        out.append((name, value))
    return out


def check(case: Case, reference: Run, ours: Run) -> None:
    ref, got = reference.first, ours.first
    if isinstance(ref, Answer) and isinstance(got, Answer):
        assert (got.status, collapsed(got.headers), got.body) == (ref.status, collapsed(ref.headers), ref.body)
    elif not (case.expect is Expect.EITHER and isinstance(got, Failed)):
        assert type(got) is type(ref), f"reference: {ref!r}\nHttp11Transport: {got!r}"
    for name, outcome in (("reference", ref), ("Http11Transport", got)):
        if case.expect is Expect.ERROR:
            assert isinstance(outcome, Failed), f"{name} accepted an answer it must refuse: {outcome!r}"
        if case.expect is Expect.ANSWER:
            assert isinstance(outcome, Answer), f"{name} refused a valid answer: {outcome!r}"
        if isinstance(outcome, Answer):
            assert outcome.body == case.body, f"{name}: wrong body ({len(outcome.body)} bytes)"
    check_second(case, ours, "Http11Transport")
    if not case.reference_exempt:
        check_second(case, reference, "reference")


def check_second(case: Case, run: Run, name: str) -> None:
    own = OWN_PREFIX + run.marker.encode()
    assert isinstance(run.second, Answer) and run.second.body == own, f"{name}: request 2 got {run.second!r}"
    reuse = Reuse.NEVER if isinstance(run.first, Failed) else case.reuse
    if reuse is Reuse.MUST:
        assert run.second_connection == 0, f"{name} did not reuse a connection it could"
    if reuse is Reuse.NEVER:
        assert run.second_connection != 0, f"{name} reused a connection it must not"


# --- the tests ------------------------------------------------------------------------------------


@EXAMPLES
@given(well_framed())
def test_well_framed_answers_agree_and_the_next_request_gets_its_own(case: Case) -> None:
    check(case, *both(case))


@EXAMPLES
@given(cut_short())
def test_answers_cut_short_agree(case: Case) -> None:
    check(case, *both(case))


@EXAMPLES
@given(garbage())
def test_garbage_instead_of_an_answer_is_an_error_in_both(case: Case) -> None:
    check(case, *both(case))


@EXAMPLES
@given(length_conflicts())
def test_duplicate_conflicting_and_invalid_lengths(case: Case) -> None:
    check(case, *both(case))


@EXAMPLES
@given(with_leftovers())
def test_bytes_after_a_complete_answer_never_reach_the_next_request(case: Case) -> None:
    check(case, *both(case))


# --- the request side -----------------------------------------------------------------------------

TOKEN = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~", min_size=1,
                max_size=12)
NOT_IN_TOKEN = '"(),/:;<=>?@[\\]{} \t\r\n\x00\x01\x7f\xe9'
INJECTIONS = (b"\r", b"\n", b"\r\n", b"\x00", b"\r\nX-Injected: 1")


@st.composite
def bad_fields(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A field that must never be written: a value with CR, LF or NUL, or a name that is not a token."""
    name, value = draw(TOKEN).encode(), draw(value_text).encode()
    if draw(st.booleans()):
        at = draw(st.integers(0, len(value)))
        return name, value[:at] + draw(st.sampled_from(INJECTIONS)) + value[at:]
    at = draw(st.integers(0, len(name)))
    return name[:at] + draw(st.sampled_from(NOT_IN_TOKEN)).encode("latin-1") + name[at:], value


async def refused_then_own(make: Callable[[], httpx.AsyncBaseTransport], bad: tuple[bytes, bytes]) -> None:
    """The bad request fails and writes nothing; the transport still serves the next request."""
    name, marker = make.__name__, secrets.token_hex(6)
    async with ScriptedServer(Play((), close=False)) as server:
        transport = make()
        try:
            refused = await exchange(transport, server.url(own_path("refused")), headers=[bad])
            after = await exchange(transport, server.url(own_path(marker)))
        finally:
            await transport.aclose()
        await server.wait_all_closed(DEADLINE)
    assert isinstance(refused, Failed), f"{name} sent the field {bad!r}: {refused!r}"
    assert isinstance(after, Answer) and after.body == OWN_PREFIX + marker.encode(), f"{name} then got {after!r}"
    received = b"".join(conn.received for conn in server.connections)
    assert b"refused" not in received, f"{name} wrote some of the refused request: {received!r}"


@EXAMPLES
@given(bad_fields())
def test_a_field_with_cr_lf_nul_or_a_bad_name_is_refused_before_anything_is_written(bad: tuple[bytes, bytes]) -> None:
    async def main() -> None:
        await refused_then_own(httpx.AsyncHTTPTransport, bad)
        await refused_then_own(Http11Transport, bad)
    asyncio.run(main())
