"""Differential tests: ``ExportTransport`` (sync) against httpx's default sync transport (httpcore + h11).

The same generated raw answers and rules as ``tests/app/wire/test_http11_differential.py`` (read its
docstring for where the rules depart from "same as h11"), run by that module's own ``run``, ``check``
and ``refused_then_own``: each exchange runs through both transports, each with its own scripted
loopback server and a fresh transport, the sync transports on a thread beside the server's loop; then
a second request on the same transport must get its own answer, on the same connection only where
reuse is allowed. Then ``ExportClient.post``, the exporters' fast path, must put on the wire exactly
the bytes ``httpx.Client.post`` puts there, and must not carry cookies.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporters.transport.client import ExportClient
from exporters.transport.http11 import ExportTransport
from tests.app.wire.test_http11_differential import DEADLINE, EXAMPLES, Run, check, collapsed, refused_then_own, run
from tests.support.raw_answers import (
    Case,
    bad_fields,
    cut_short,
    garbage,
    length_conflicts,
    well_framed,
    with_leftovers,
)
from tests.support.scripted_http import FIRST, Play, ScriptedServer, own_path


class InThread(httpx.AsyncBaseTransport):
    """A sync transport behind the async interface, each call on a worker thread, so the machinery of
    the async differential test (exchange, run, the rules) drives it unchanged."""

    def __init__(self, sync: httpx.BaseTransport) -> None:
        self.sync = sync

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        def call() -> httpx.Response:
            response = self.sync.handle_request(request)
            try:
                body = b"".join(response.iter_raw())
            finally:
                response.close()
            # A stream, not content=: httpx would add a Content-Length the answer never had.
            return httpx.Response(response.status_code, headers=response.headers.raw, stream=httpx.ByteStream(body))
        return await asyncio.to_thread(call)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.sync.close)


def httpx_sync() -> httpx.AsyncBaseTransport:
    return InThread(httpx.HTTPTransport())


def export_transport() -> httpx.AsyncBaseTransport:
    return InThread(ExportTransport())


def both(case: Case) -> tuple[Run, Run]:
    async def main() -> tuple[Run, Run]:
        return await run(httpx_sync, case.play), await run(export_transport, case.play)
    return asyncio.run(main())


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


@EXAMPLES
@given(bad_fields())
def test_a_field_with_cr_lf_nul_or_a_bad_name_is_refused_before_anything_is_written(bad: tuple[bytes, bytes]) -> None:
    async def main() -> None:
        await refused_then_own(httpx_sync, bad)
        await refused_then_own(export_transport, bad)
    asyncio.run(main())


# --- ExportClient: the exporters' post ------------------------------------------------------------


async def posted_bytes(client: httpx.Client, timeout: float | None) -> tuple[bytes, int]:
    """What one export-shaped POST puts on the wire, and the answer's status."""
    async with ScriptedServer(Play((), close=False)) as server:
        url = server.url(own_path("export"))
        headers = {"Authorization": "Basic cGs6c2s=", "Content-Type": "application/x-protobuf",
                   "Content-Encoding": "gzip"}

        def post() -> int:
            with client:
                reply = client.post(url, content=b"\x1f\x8bbody", headers=headers, timeout=timeout)
                return reply.status_code

        status = await asyncio.to_thread(post)
        await server.wait_all_closed(DEADLINE)
    received = b"".join(conn.received for conn in server.connections)
    return received.replace(b"127.0.0.1:%d" % server.port, b"127.0.0.1:PORT"), status


def test_export_client_post_writes_the_same_request_as_httpx() -> None:
    async def main() -> None:
        for timeout in (None, 3.0):
            ours = await posted_bytes(ExportClient(timeout=5.0, trust_env=False), timeout)
            reference = await posted_bytes(httpx.Client(timeout=5.0, trust_env=False), timeout)
            assert ours == reference
            assert ours[1] == 200 and ours[0].startswith(b"POST /own/export HTTP/1.1\r\n")
    asyncio.run(main())


def test_export_client_does_not_carry_one_answers_cookie_into_the_next_request() -> None:
    answer = b"HTTP/1.1 200 OK\r\nSet-Cookie: session=team-a\r\nContent-Length: 0\r\n\r\n"

    async def main() -> bytes:
        async with ScriptedServer(Play((answer,), close=False)) as server:
            def two_posts() -> None:
                with ExportClient(timeout=5.0, trust_env=False) as client:
                    client.post(server.url(FIRST), content=b"a", headers={"Authorization": "team-a"})
                    client.post(server.url(own_path("b")), content=b"b", headers={"Authorization": "team-b"})

            await asyncio.to_thread(two_posts)
            await server.wait_all_closed(DEADLINE)
        return b"".join(conn.received for conn in server.connections)

    received = asyncio.run(main())
    assert received.count(b"POST ") == 2
    assert b"session=team-a" not in received


def test_export_client_refuses_what_would_send_through_a_proxy() -> None:
    for options in ({"trust_env": True}, {"trust_env": False, "proxy": "http://127.0.0.1:3128"},
                    {"trust_env": False, "mounts": {"all://": None}}):
        with pytest.raises(ValueError, match="sends directly"):
            ExportClient(**options)


@EXAMPLES
@given(well_framed())
def test_post_answer_reads_the_same_answer_as_httpx_client_post(case: Case) -> None:
    """The exporters' lean answer: status, headers, body and text as httpx's own client reads them
    (headers compared as the transport differential tests compare them: see ``collapsed``)."""
    def read(make: type[httpx.Client], lean: bool) -> tuple[int, list[tuple[bytes, bytes]], bytes, str]:
        async def main() -> tuple[int, list[tuple[bytes, bytes]], bytes, str]:
            async with ScriptedServer(case.play) as server:
                def call() -> tuple[int, list[tuple[bytes, bytes]], bytes, str]:
                    with make(timeout=5.0, trust_env=False) as client:
                        post = client.post_answer if lean else client.post  # type: ignore[attr-defined]
                        answer = post(server.url(FIRST), content=b"span", headers={"Authorization": "Basic a"})
                        return answer.status_code, collapsed(tuple(answer.headers.raw)), answer.content, answer.text
                return await asyncio.to_thread(call)
        return asyncio.run(main())

    ours = read(ExportClient, lean=True)
    assert ours == read(httpx.Client, lean=False)
    assert ours[2] == case.body


_TOKEN = st.text(alphabet="!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                 min_size=1, max_size=20)
# Values without surrounding blanks: h11 refuses those, the transports' own rules (CR, LF, NUL) do
# not, as the http11 differential test's docstring says.
_VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30).map(str.strip)


@EXAMPLES
@given(extra=st.dictionaries(st.one_of(_TOKEN, st.sampled_from(["authorization", "User-Agent", "accept"])),
                             _VALUE, min_size=1, max_size=3))
def test_post_answer_with_per_post_headers_writes_what_httpx_writes_with_them_merged(extra: dict[str, str]) -> None:
    """An idempotency key per POST rides on the cached head; where httpx would put such a name in
    place (a default header, one of ``headers``) the full path is taken. Either way: httpx's bytes."""
    base = {"Authorization": "Basic cGs6c2s=", "Content-Type": "application/json"}

    async def wire(lean: bool) -> bytes:
        async with ScriptedServer(Play((), close=False)) as server:
            url = server.url(own_path("export"))

            def post() -> None:
                with (ExportClient if lean else httpx.Client)(timeout=5.0, trust_env=False) as client:
                    if lean:
                        client.post_answer(url, content=b"{}", headers=dict(base))  # the head is cached first
                        client.post_answer(url, content=b"{}", headers=dict(base), extra=extra)  # type: ignore[attr-defined]
                    else:
                        client.post(url, content=b"{}", headers=base)
                        client.post(url, content=b"{}", headers={**base, **extra})

            await asyncio.to_thread(post)
            await server.wait_all_closed(DEADLINE)
        return b"".join(conn.received for conn in server.connections).replace(b"%d" % server.port, b"PORT")

    assert asyncio.run(wire(lean=True)) == asyncio.run(wire(lean=False))
