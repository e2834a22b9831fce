"""``GET /health``'s reachability checks: one connection per deployment however many probes come at
once, reused for the cache's lifetime, made again after it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from app.config.settings import DeploymentConfig
from app.providers.reachability import ReachabilityCache
from tests.support.upstream import closed_port


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def listening() -> Iterator[tuple[socket.socket, int]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock, sock.getsockname()[1]


def accepted(sock: socket.socket) -> int:
    """Connections the listening socket has queued (each probe that really connected)."""
    sock.setblocking(False)
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def deployment(port: int, name: str = "d-0") -> DeploymentConfig:
    return DeploymentConfig("gpt", "openai", "gpt", name, api_base=f"http://127.0.0.1:{port}/v1")


async def test_concurrent_probes_share_one_connection_and_the_verdict_is_reused(
        listening: tuple[socket.socket, int]) -> None:
    sock, port = listening
    clock = Clock()
    cache = ReachabilityCache(None, ttl=5.0, clock=clock)
    dead = deployment(closed_port(), "d-1")
    results = await asyncio.gather(*(cache.check_all([deployment(port), dead]) for _ in range(20)))
    assert all([r.error for r in result] == [None, "connection refused"] for result in results)
    assert cache.connects == 2
    await asyncio.sleep(0.05)
    assert accepted(sock) == 1
    clock.now += 4.9
    await cache.check_all([deployment(port)])
    assert cache.connects == 2
    clock.now += 0.2  # past the ttl: checked again
    await cache.check_all([deployment(port)])
    assert cache.connects == 3


async def test_a_deployment_that_comes_back_is_seen_after_the_ttl(listening: tuple[socket.socket, int]) -> None:
    _sock, port = listening
    clock = Clock()
    cache = ReachabilityCache(None, ttl=5.0, clock=clock)
    down_port = closed_port()
    [down] = await cache.check_all([deployment(down_port)])
    assert down.error == "connection refused"
    [still] = await cache.check_all([deployment(down_port)])
    assert still is down
    clock.now += 6
    [up] = await cache.check_all([deployment(port)])  # now reachable (at another address)
    assert up.error is None
