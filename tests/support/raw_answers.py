"""Generated raw HTTP/1.1 answers (hypothesis strategies) and what a correct client must make of each.

Each strategy draws a ``Case``: the bytes a scripted server plays (``Play``: split into TCP writes,
then closed or not), the outcome a correct client must reach (an answer with ``body``, an error, or
either where the RFCs allow a refusal) and whether the connection may serve the next request.
``bad_fields`` draws request fields that must never be written. The rules they encode, and where
h11 and RFC 9112 differ, are written down in ``tests/app/wire/test_http11_differential.py``.
"""

from __future__ import annotations

import enum
import itertools
import random
from dataclasses import dataclass

from hypothesis import strategies as st

from tests.support.scripted_http import Play

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
    framing = draw(st.sampled_from(_framings(status, version, keep_alive)))
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
    return Message(head, framed, body, _reuse(framing, version, connection), framing)


def _framings(status: int, version: bytes, keep_alive: bool) -> tuple[str, ...]:
    if status in NO_BODY:
        return ("none",)
    if version == b"HTTP/1.0":  # chunked is HTTP/1.1
        return ("length", "close")
    return ("length", "chunked") if keep_alive else ("length", "chunked", "close")


def _reuse(framing: str, version: bytes, connection: bytes | None) -> Reuse:
    if framing == "close" or connection == b"close":
        return Reuse.NEVER
    if version == b"HTTP/1.0":
        return Reuse.MAY if connection == b"keep-alive" else Reuse.NEVER
    return Reuse.MUST


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
    m = draw(st.integers(0, 70000))
    other = b"%d" % (m + 1 if m == n else m)  # a length that is not the body's
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
    # After a 204 or 304 the leftover is also a body the answer must not have.
    play = draw(split(message.head + message.framed + extra, False))
    return Case(play, Expect.ANSWER, message.body, Reuse.NEVER, reference_exempt=True)


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
