"""A Redis server of the test's own, for tests that kill and restart it, and key clean-up on the shared one.

The shared server on 6379 must never be stopped, so restart tests start ``redis-server`` on a free
loopback port with nothing persisted (``--save '' --appendonly no``): a restart comes back empty, as a
Redis that lost its memory does.

    with temporary_redis() as server:
        ...  # server.port
        server.kill()    # kill -9
        server.start()   # same port, empty
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis.asyncio as aioredis

from tests.support.upstream import closed_port

SHARED_URL = "redis://127.0.0.1:6379/0"
START_SECONDS = 10.0


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class TemporaryRedis:
    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_SECONDS
        while not answers(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@contextmanager
def temporary_redis() -> Iterator[TemporaryRedis]:
    server = TemporaryRedis(closed_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()


async def delete_prefixed(prefix: str, url: str = SHARED_URL) -> None:
    """Delete this test's keys (and only them) from the shared server."""
    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
