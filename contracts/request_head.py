"""The request head both HTTP/1.1 transports write, checked before a byte of it leaves.

A header value with CR or LF would inject headers or end the head early (the body then reads as a
second request on a connection every team shares); a NUL is refused by servers in ways that differ.
Config values are checked at start-up too (``app.config.settings``); this is the last line.
"""

from __future__ import annotations

import re
from typing import Protocol

import httpx

_FRAMING = (b"content-length", b"transfer-encoding")
# RFC 9110 section 5.1 token characters for names; values may not hold CR, LF or NUL (section 5.5).
_BAD_NAME = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")
_BAD_VALUE = re.compile(rb"[\r\n\0]")


class Forward(Protocol):
    """A forwarding proxy as the head needs it (``app.wire.egress.Proxy``): only its credentials."""

    @property
    def authorization(self) -> bytes | None: ...


def check_header(name: bytes, value: bytes) -> None:
    """Refuse what would split or inject headers; raised before a single byte is written."""
    if not name or _BAD_NAME.search(name):
        raise httpx.LocalProtocolError(f"invalid character in header name {name[:40]!r}")
    if _BAD_VALUE.search(value):
        raise httpx.LocalProtocolError(f"header {name.decode('ascii')!r} has a line break or NUL in its value")


def serialize(request: httpx.Request, body: bytes, names_ok: set[bytes], forward: Forward | None = None) -> bytes:
    """Request line, headers as httpx prepared them (Host included), body. The body is always sent
    whole, so its framing is always a Content-Length: a request built from a streaming body came
    with ``Transfer-Encoding: chunked`` instead, which would not match the bytes sent. Through a
    forwarding proxy the target is the absolute URL and the proxy gets its credentials.

    Checked before anything is written: every header name is a token (once per distinct name),
    and the head holds exactly the line breaks it was built with and no NUL (three scans in C)."""
    target = request.url.raw_path
    if b" " in target:
        raise httpx.LocalProtocolError("invalid character in the request target")
    if forward is not None:
        url = request.url
        target = b"%b://%b%b" % (url.raw_scheme, url.netloc, target)
    parts = [request.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    lines = 2  # the request line and the blank line, plus one per header line below
    if forward is not None and forward.authorization:
        parts += (b"Proxy-Authorization: ", forward.authorization, b"\r\n")
        lines += 1
    for name, value in request.headers.raw:
        if name.lower() not in _FRAMING:
            if name not in names_ok:
                check_header(name, b"")
                if len(names_ok) < 256:
                    names_ok.add(name)
            parts += (name, b": ", value, b"\r\n")
            lines += 1
    if body or request.method not in ("GET", "HEAD"):
        parts += (b"Content-Length: ", str(len(body)).encode("ascii"), b"\r\n")
        lines += 1
    parts.append(b"\r\n")
    parts.append(body)
    message = b"".join(parts)
    end = len(message) - len(body)
    if (message.count(b"\n", 0, end) != lines or message.count(b"\r", 0, end) != lines
            or message.find(b"\0", 0, end) >= 0):
        for name, value in request.headers.raw:
            check_header(name, value)
        raise httpx.LocalProtocolError("a line break or NUL in the request head")
    return message
