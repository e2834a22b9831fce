"""The RESP2 encoder and parser against redis-py's own, on generated inputs: the same bytes for generated
commands (redis-py's ``PythonRespSerializer``), the same Python values for generated replies
(redis-py's ``_AsyncRESP2Parser``) fed to ours cut at arbitrary points."""

from __future__ import annotations

import asyncio
import itertools
import types
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis._parsers.base import BaseParser
from redis._parsers.encoders import Encoder
from redis._parsers.resp2 import _AsyncRESP2Parser
from redis.connection import PythonRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError
from redis.exceptions import NoScriptError as RedisNoScriptError

from app.limits.resp import NoScriptError, ProtocolError, ReplyError, ReplyParser, encode_command

SETTINGS = settings(max_examples=400, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
ENCODER = Encoder("utf-8", "strict", False)  # redis-py's defaults (decode_responses=False, as the backend had)

_arg = st.one_of(
    st.binary(max_size=40), st.text(max_size=40), st.integers(), st.integers(-(2**70), 2**70),
    st.floats(), st.just(b""), st.just(""), st.binary(min_size=6000, max_size=7000),  # over redis-py's cutoff
)
_command = st.tuples(st.sampled_from(["EVALSHA", "SCRIPT", "SET", "GET", "PING", b"EVALSHA"]), st.lists(_arg))


@SETTINGS
@given(_command)
def test_a_command_encodes_to_the_bytes_redis_py_packs(command: tuple[Any, list[Any]]) -> None:
    args = [command[0], *command[1]]
    ours = encode_command(args)
    theirs = b"".join(PythonRespSerializer(6000, ENCODER.encode).pack(*args))
    assert ours == theirs


def test_a_bool_argument_is_refused_as_redis_py_refuses_it() -> None:
    with pytest.raises(DataError):
        PythonRespSerializer(6000, ENCODER.encode).pack("SET", "k", True)
    with pytest.raises(TypeError, match="bool"):
        encode_command(["SET", "k", True])


# Replies are generated as their wire bytes; a line never holds CR or LF (Redis never sends them there).
_line = st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


def _raises_in_redis_py(line: bytes) -> bool:
    """Error replies redis-py raises as connection errors (LOADING, WRONGPASS...) instead of returning."""
    return isinstance(BaseParser.parse_error(line.decode("utf-8", errors="replace")), RedisConnectionError)


_code = st.one_of(st.sampled_from([b"ERR", b"NOSCRIPT", b"WRONGTYPE", b"BUSY", b"OOM", b"READONLY", b"NOPERM"]),
                  st.from_regex(rb"\A[A-Z]{1,10}\Z"))
_error = st.one_of(st.builds(lambda code, text: code + b" " + text, _code, _line.filter(bool)), _line.filter(bool))
_leaf = st.one_of(
    _line.map(lambda line: b"+" + line + b"\r\n"),
    _error.filter(lambda line: not _raises_in_redis_py(line)).map(lambda line: b"-" + line + b"\r\n"),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: b":%d\r\n" % n),
    st.just(b"$-1\r\n"),
    st.binary(max_size=60).map(lambda data: b"$%d\r\n%s\r\n" % (len(data), data)),  # CR LF inside too
)


def _array(items: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join(items)


_reply = st.recursive(
    _leaf, lambda children: st.one_of(st.just(b"*-1\r\n"), st.lists(children, max_size=5).map(_array)), max_leaves=20)


def _theirs(wire: bytes, count: int) -> list[Any]:
    async def read() -> list[Any]:
        reader = asyncio.StreamReader()
        reader.feed_data(wire)
        reader.feed_eof()
        parser = _AsyncRESP2Parser(65536)
        parser.on_connect(types.SimpleNamespace(_reader=reader, encoder=ENCODER))
        return [await parser.read_response() for _ in range(count)]
    return asyncio.run(read())


def _same(value: Any) -> Any:
    """A reply in terms both parsers share: an error reply as (is NOSCRIPT, its whole line)."""
    if isinstance(value, list):
        return [_same(item) for item in value]
    if isinstance(value, ReplyError):
        return ("error", isinstance(value, NoScriptError), value.message)
    if isinstance(value, ResponseError):
        whole = f"{value.status_code} {value}" if value.status_code in BaseParser.EXCEPTION_CLASSES else str(value)
        return ("error", isinstance(value, RedisNoScriptError), whole)
    return value


def _cut(wire: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(wire), *(cut % (len(wire) + 1) for cut in cuts)})
    return [wire[a:b] for a, b in itertools.pairwise(points)]


@SETTINGS
@given(st.lists(_reply, min_size=1, max_size=5), st.lists(st.integers(min_value=0), max_size=12))
def test_replies_cut_anywhere_parse_to_the_values_redis_py_reads(replies: list[bytes], cuts: list[int]) -> None:
    wire = b"".join(replies)
    parser, ours = ReplyParser(), []
    for chunk in _cut(wire, cuts):
        ours += parser.feed(chunk)
    assert _same(ours) == _same(_theirs(wire, len(replies)))
    assert parser.feed(b"") == []


@SETTINGS
@given(_reply, st.integers(min_value=1))
def test_an_incomplete_reply_yields_nothing_until_its_last_byte(reply: bytes, cut: int) -> None:
    parser = ReplyParser()
    head = cut % len(reply)
    assert parser.feed(reply[:head]) == []
    assert _same(parser.feed(reply[head:])) == _same(_theirs(reply, 1))


@pytest.mark.parametrize("wire", [b"?what\r\n", b"$x\r\n", b":12a\r\n", b"$3\r\nabcd\r\n"])
def test_bytes_that_are_not_resp2_raise_a_protocol_error(wire: bytes) -> None:
    with pytest.raises(ProtocolError):
        ReplyParser().feed(wire)
