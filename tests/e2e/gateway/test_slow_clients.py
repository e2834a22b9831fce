"""Slow and greedy clients: the header-read timeout and the per-worker connection cap.

Every wait here is on the event itself (EOF on a socket, an answer) with a deadline: nothing sleeps.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml

from tests.support.gateway import RunningGateway, running_gateway
from tests.support.process import gateway_process
from tests.support.teams import loopback_client, mock_models, openai_client, poll
from tests.support.upstream import closed_port

HEADER_TIMEOUT = 0.5
MAX_CONNECTIONS = 3
DEADLINE = 5.0  # far beyond the timeout: a server that never closes fails here, not by hanging
PARTIAL = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: app"
LIVELINESS = b"GET /health/liveliness HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def settings() -> dict[str, object]:
    return {"model_list": mock_models(), "spangate_settings": {
        "header_read_timeout_seconds": HEADER_TIMEOUT, "max_connections_per_worker": MAX_CONNECTIONS}}


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[RunningGateway]:
    with running_gateway(settings(), data_dir=tmp_path) as gateway:
        yield gateway


def connect(base_url: str) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=DEADLINE)
    sock.settimeout(DEADLINE)
    return sock


def read_until_eof(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sent before closing, and when it closed; fails after DEADLINE."""
    received = b""
    while chunk := sock.recv(4096):  # socket.timeout (an OSError) past the deadline fails the test
        received += chunk
    return received, time.monotonic()


def read_response(sock: socket.socket) -> bytes:
    """One small response with a Content-Length (liveliness): headers and body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    fields = dict(line.lower().split(b": ", 1) for line in head.split(b"\r\n")[1:])
    length = int(fields[b"content-length"])
    while len(body) < length:
        body += sock.recv(4096)
    return head


def test_partial_headers_are_answered_408_and_closed_while_others_are_served(gw: RunningGateway) -> None:
    started = time.monotonic()  # before connecting: the deadline runs from the connection's start
    with connect(gw.base_url) as slow, connect(gw.base_url) as silent:
        slow.sendall(PARTIAL)
        with openai_client(gw.base_url, "unused") as client:  # another connection, served meanwhile
            reply = client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content
        received, closed_at = read_until_eof(slow)
        assert received.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), received
        assert received.endswith(b"request headers not received in time")
        assert HEADER_TIMEOUT <= closed_at - started < HEADER_TIMEOUT + 2
        # A connection that never sends a byte is held to the same deadline.
        received, closed_at = read_until_eof(silent)
        assert received.startswith(b"HTTP/1.1 408 ")
        assert closed_at - started < HEADER_TIMEOUT + 2


def test_the_timeout_applies_to_each_request_on_a_kept_alive_connection(gw: RunningGateway) -> None:
    with connect(gw.base_url) as sock:
        for _ in range(2):  # complete requests, each well within the timeout, keep the connection
            sock.sendall(LIVELINESS)
            assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        sock.sendall(PARTIAL)
        received, closed_at = read_until_eof(sock)
    assert received.startswith(b"HTTP/1.1 408 ")
    assert HEADER_TIMEOUT <= closed_at - started < HEADER_TIMEOUT + 2


def test_connections_beyond_the_cap_get_503(gw: RunningGateway) -> None:
    with ExitStack() as stack, loopback_client() as client:
        for _ in range(MAX_CONNECTIONS):
            sock = stack.enter_context(connect(gw.base_url))
            sock.sendall(LIVELINESS)
            # Answered (the cap's last connection too: the cap is the number served, not one fewer),
            # and then held open by the server as a keep-alive connection.
            assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        assert client.get(gw.base_url + "/health/liveliness").status_code == 503
    with loopback_client() as client:  # the held connections are closed: served again once the server saw it
        poll(lambda: client.get(gw.base_url + "/health/liveliness").status_code == 200, timeout=DEADLINE)


def test_the_cli_workers_apply_the_header_timeout(tmp_path: Path) -> None:
    """uvicorn pickles its Config to each spawned worker: the timeout must travel with it."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**settings(), "spangate_settings": {
        "data_dir": str(tmp_path / "data"), "header_read_timeout_seconds": HEADER_TIMEOUT}}))
    port = closed_port()
    with gateway_process(config, port, "--num_workers", "2"), connect(f"http://127.0.0.1:{port}") as sock:
        started = time.monotonic()
        sock.sendall(PARTIAL)
        received, closed_at = read_until_eof(sock)
    assert received.startswith(b"HTTP/1.1 408 ")
    assert closed_at - started < HEADER_TIMEOUT + 2
