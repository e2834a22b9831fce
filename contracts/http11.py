"""The HTTP/1.1 response framing both transports parse with: the gateway's async upstream client
(``app.wire.http11``) and the exporters' synchronous one (``exporters.transport.http11``).

``ResponseFraming`` holds httptools' callbacks and the state of one response at a time. Framing
follows RFC 9112 section 6: ``1xx`` interim responses are skipped (101 is an error: no upgrade is
ever asked for); Transfer-Encoding wins over Content-Length (the connection is then never reused)
and must end in ``chunked``; a body without either ends when the server closes (never reused);
204/304 have no body; duplicate Content-Length is refused (the RFC allows it). Invalid bytes after
a complete response only end keep-alive; trailers are dropped (h11 and httpcore drop them too).

A response head (status line, headers, interim heads included) over ``MAX_RESPONSE_HEAD`` bytes is
``ResponseHeadTooLarge``: httptools joins a header's pieces by concatenation, so an unbounded head
cost memory and quadratic CPU (one 128 MB header value stalled every call for 17 s).

What differs between the transports stays with them: how body bytes are kept (``on_body``), who is
told of the head, the end or an error (``head_done``, ``message_done``, ``fail``), and the words
their errors use (``Wording``: the text of an error is part of each transport's behaviour).
"""

from __future__ import annotations

from dataclasses import dataclass

import httptools
import httpx

# nginx reads an upstream's head into proxy_buffer_size (4 or 8 KiB by default) and answers 502
# ("upstream sent too big header") beyond it; Node's HTTP parser stops at 16 KiB. A provider's head
# is about 1 KiB; 64 KiB leaves room for long cookies and tracing headers.
MAX_RESPONSE_HEAD = 64 * 1024
_CONTENT_LENGTH, _TRANSFER_ENCODING = 1, 2  # bits of ``framing``: which framing headers were seen


class ResponseHeadTooLarge(httpx.RemoteProtocolError):
    """The answer's head went past ``MAX_RESPONSE_HEAD`` bytes before it ended."""

    def __init__(self) -> None:
        super().__init__(f"the response head is larger than {MAX_RESPONSE_HEAD} bytes")


def head_room(fed: int, data: bytes) -> tuple[bytes, bytes]:
    """Split ``data`` into what a head already ``fed`` bytes long may still take, and the rest.
    The parser sees at most ``MAX_RESPONSE_HEAD`` bytes before the head ends, so it never joins more."""
    room = MAX_RESPONSE_HEAD - fed
    return (data, b"") if len(data) <= room else (data[:max(room, 0)], data[max(room, 0):])


@dataclass(frozen=True, slots=True)
class Wording:
    """How a transport's errors name the other side: ``peer`` is the subject of "... sent more than
    one Content-Length"; ``invalid`` starts the message for bytes that are not HTTP."""

    peer: str
    invalid: str


class ResponseFraming:
    """httptools' callbacks for one response at a time on a connection (``reset`` between two)."""

    def __init__(self, wording: Wording) -> None:
        self.wording = wording
        self.parser = httptools.HttpResponseParser(self)
        # Content-Length beside Transfer-Encoding: llhttp refuses it by default, RFC 9112 says the
        # Transfer-Encoding wins (h11 agrees); such a connection is never reused (framing == 3).
        self.parser.set_dangerous_leniencies(lenient_chunked_length=True)
        self.reset()

    def reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.keep_alive = False
        self.complete = False
        self.error: Exception | None = None
        self.in_body = False  # final head received: later on_header calls are trailers
        self.until_close = False  # close-delimited body
        self.framing = 0  # _CONTENT_LENGTH | _TRANSFER_ENCODING seen in the final head
        self.head_bytes = 0  # bytes fed before the final head ended (interim heads included)

    # -- feeding ---------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Parse ``data``; raises the first error of the response: a framing one the callbacks
        recorded, bytes that are not HTTP before the response ended, or a head too large."""
        if not self.in_body:
            data, rest = head_room(self.head_bytes, data)
            self.head_bytes += len(data)
            self._parse(data)
            if self.error is None and not self.in_body and (rest or self.head_bytes >= MAX_RESPONSE_HEAD):
                raise ResponseHeadTooLarge()
            data = rest
        if data and self.error is None:
            self._parse(data)
        if self.error is not None:
            raise self.error

    def _parse(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if not self.complete:
                raise httpx.RemoteProtocolError(f"{self.wording.invalid}: {exc}") from exc
            self.keep_alive = False  # garbage after a complete response: only the connection goes

    def fail(self, exc: Exception) -> None:
        """Record the response's first error (a transport may also tell whoever waits for it)."""
        if self.error is None:
            self.error = exc

    def head_done(self) -> None:
        """The final head is in (``status``, ``headers``, ``keep_alive``, ``until_close`` are set)."""

    def message_done(self) -> None:
        """The response is complete."""

    # -- httptools callbacks ---------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.complete or self.in_body:  # a second response nobody asked for
            self.keep_alive = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_body:  # a trailer: not part of the response head
            return
        if len(name) in (14, 17):  # the only lengths of the two names: most headers skip lower()
            lower = name.lower()
            if lower == b"content-length":
                if self.framing & _CONTENT_LENGTH:
                    self._refuse("sent more than one Content-Length")
                self.framing |= _CONTENT_LENGTH
            elif lower == b"transfer-encoding":
                self.framing |= _TRANSFER_ENCODING
                if not value.rstrip().lower().endswith(b"chunked"):
                    self._refuse("used a Transfer-Encoding other than chunked")
        self.headers.append((name, value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        if self.complete or self.error is not None:
            return
        status = self.parser.get_status_code()
        if status < 200:
            if status == 101:
                self._refuse("switched protocols without being asked")
            self.headers, self.framing = [], 0  # an interim response (100, 103): the real one follows
            return
        self.status, self.in_body = status, True
        self.keep_alive = self.parser.should_keep_alive() and self.framing != _CONTENT_LENGTH | _TRANSFER_ENCODING
        if not self.framing and status not in (204, 304):
            self.until_close, self.keep_alive = True, False
        self.head_done()

    def on_body(self, body: bytes) -> None:
        """Each transport keeps body bytes its own way."""
        raise NotImplementedError

    def on_message_complete(self) -> None:
        if self.in_body and not self.complete and self.error is None:
            self.complete = True
            self.message_done()

    def _refuse(self, what: str) -> None:
        self.fail(httpx.RemoteProtocolError(f"{self.wording.peer} {what}"))
