"""The HTTP/1.1 response framing both transports share (``contracts.http11``), fed bytes directly.
The transports' own tests and their differential tests prove it on sockets against h11/httpcore."""

from __future__ import annotations

import httptools
import httpx
import pytest

from contracts.http11 import MAX_RESPONSE_HEAD, ResponseFraming, ResponseHeadTooLarge, Wording, head_room

WORDING = Wording(peer="the peer", invalid="not HTTP")


class Recorded(ResponseFraming):
    """The core with a body kept whole and its hooks counted."""

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.heads = self.ends = 0
        super().__init__(WORDING)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def head_done(self) -> None:
        self.heads += 1

    def message_done(self) -> None:
        self.ends += 1


def fed(*pieces: bytes) -> Recorded:
    framing = Recorded()
    for piece in pieces:
        framing.feed(piece)
    return framing


def test_a_content_length_response_is_read_and_allows_keep_alive() -> None:
    framing = fed(b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-Id: a \t\r\n\r\nhel", b"lo")
    assert (framing.status, framing.headers, b"".join(framing.body)) == (
        201, [(b"Content-Length", b"5"), (b"X-Id", b"a")], b"hello")
    assert framing.complete and framing.keep_alive and not framing.until_close
    assert (framing.heads, framing.ends) == (1, 1)


def test_interim_heads_are_skipped_but_count_toward_the_head_bound() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    final = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    framing = fed(interim + final)
    assert (framing.status, framing.headers, framing.heads) == (200, [(b"Content-Length", b"0")], 1)
    assert framing.head_bytes == len(interim + final)


def test_a_switch_of_protocols_nobody_asked_for_is_an_error() -> None:
    framing = Recorded()
    with pytest.raises(httpx.RemoteProtocolError):
        framing.feed(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
    assert str(framing.error) == "the peer switched protocols without being asked"


def test_a_transfer_encoding_other_than_chunked_is_refused() -> None:
    framing = Recorded()
    with pytest.raises(httpx.RemoteProtocolError) as raised:
        framing.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok")
    assert str(raised.value) == str(framing.error) == "the peer used a Transfer-Encoding other than chunked"


def test_a_duplicate_content_length_is_refused() -> None:
    """llhttp refuses it before the second header reaches the callback, as bytes that are not HTTP."""
    with pytest.raises(httpx.RemoteProtocolError, match=r"^not HTTP: "):
        fed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok")


def test_transfer_encoding_wins_over_content_length_and_the_connection_is_not_reused() -> None:
    framing = fed(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
    assert (b"".join(framing.body), framing.complete, framing.keep_alive) == (b"ok", True, False)


def test_trailers_are_not_part_of_the_head() -> None:
    framing = fed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Trailer: t\r\n\r\n")
    assert framing.complete and framing.headers == [(b"Transfer-Encoding", b"chunked")]


def test_a_body_without_framing_ends_at_the_close_and_is_never_reused() -> None:
    framing = fed(b"HTTP/1.1 200 OK\r\n\r\nsome")
    assert (framing.until_close, framing.keep_alive, framing.complete) == (True, False, False)


@pytest.mark.parametrize("status", [204, 304])
def test_204_and_304_have_no_body(status: int) -> None:
    framing = fed(b"HTTP/1.1 %d X\r\n\r\n" % status)
    assert (framing.complete, framing.until_close, framing.keep_alive) == (True, False, True)


def test_bytes_that_are_not_http_before_the_end_raise_with_the_transports_words() -> None:
    with pytest.raises(httpx.RemoteProtocolError, match=r"^not HTTP: ") as raised:
        fed(b"SMTP ready\r\n")
    assert isinstance(raised.value.__cause__, httptools.HttpParserError)


def test_bytes_after_a_complete_response_only_end_keep_alive() -> None:
    framing = fed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE\r\n\r\n")
    assert (b"".join(framing.body), framing.complete, framing.keep_alive, framing.error) == (b"ok", True, False, None)


def test_a_second_response_nobody_asked_for_ends_keep_alive() -> None:
    one = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"
    framing = fed(one + one)
    assert (framing.complete, framing.keep_alive, framing.ends) == (True, False, 1)


def test_reset_reads_the_next_response_of_a_kept_alive_connection() -> None:
    framing = fed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")
    framing.reset()
    framing.feed(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    assert (framing.status, framing.headers, framing.complete, framing.ends) == (
        404, [(b"Content-Length", b"0")], True, 2)


def head_of(size: int) -> bytes:
    """A final head exactly ``size`` bytes long."""
    start, end = b"HTTP/1.1 200 OK\r\nX-Pad: ", b"\r\nContent-Length: 0\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


def test_a_head_of_exactly_the_bound_is_read() -> None:
    assert fed(head_of(MAX_RESPONSE_HEAD)).complete


@pytest.mark.parametrize("piece", [1000, MAX_RESPONSE_HEAD + 1])
def test_a_head_past_the_bound_fails_and_the_parser_never_sees_more_than_the_bound(piece: int) -> None:
    data, framing = head_of(MAX_RESPONSE_HEAD + 1), Recorded()
    with pytest.raises(ResponseHeadTooLarge, match=f"larger than {MAX_RESPONSE_HEAD} bytes"):
        for start in range(0, len(data), piece):
            framing.feed(data[start:start + piece])
    assert framing.head_bytes == MAX_RESPONSE_HEAD and not framing.in_body


def test_head_room_splits_at_what_the_bound_leaves() -> None:
    assert head_room(0, b"abc") == (b"abc", b"")
    assert head_room(MAX_RESPONSE_HEAD - 2, b"abc") == (b"ab", b"c")
    assert head_room(MAX_RESPONSE_HEAD + 5, b"abc") == (b"", b"abc")

