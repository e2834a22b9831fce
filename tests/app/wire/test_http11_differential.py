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
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from hypothesis import event, given, settings

from app.wire.http11 import Http11Transport
from tests.support.raw_answers import (
    Case,
    Expect,
    Reuse,
    bad_fields,
    cut_short,
    garbage,
    length_conflicts,
    well_framed,
    with_leftovers,
)
from tests.support.scripted_http import FIRST, OWN_PREFIX, Play, ScriptedServer, own_path

DEADLINE = 5.0  # a wait on the server's events; never reached when things work
TIMEOUTS = {"connect": 5.0, "read": 2.0, "write": 5.0, "pool": 5.0}
EXCHANGE_DEADLINE = 15.0
EXAMPLES = settings(database=None, deadline=None, max_examples=40, report_multiple_bugs=False)


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


def kind(outcome: Outcome) -> str:
    return outcome.kind if isinstance(outcome, Failed) else "answer"


def check(case: Case, reference: Run, ours: Run) -> None:
    ref, got = reference.first, ours.first
    both_said = f"reference: {ref!r}\nHttp11Transport: {got!r}"
    event(f"reference {kind(ref)}, Http11Transport {kind(got)}")  # pytest --hypothesis-show-statistics
    if isinstance(ref, Answer) and isinstance(got, Answer):
        same = (got.status, collapsed(got.headers), got.body) == (ref.status, collapsed(ref.headers), ref.body)
        assert same, both_said
    elif not (case.expect is Expect.EITHER and isinstance(got, Failed)):
        assert type(got) is type(ref), both_said
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
