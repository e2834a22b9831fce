"""The HTTP server's own limits against slow or greedy clients, as a uvicorn ``Config``.

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``) and concurrency
(``limit_concurrency``), but not the time a client may take to send its request headers: a
connection that trickles a header block, or sends nothing at all, stays open for ever and holds
a file descriptor and a connection slot. ``HeaderTimeoutProtocol`` closes it with a 408 once
``header_read_timeout`` has passed without a complete header block.

The timeout travels on the ``Config`` (pickled to each worker by uvicorn's spawn-based
supervisor), not on the protocol class, which uvicorn imports by name in every worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
from collections.abc import Mapping
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

from app.config.settings import GatewayConfig

SUPERVISOR_ENV = "SPANGATE_SUPERVISOR_PID"  # set by the CLI for the workers it spawns
_PARENT_POLL = 0.5
log = logging.getLogger("spangate")

_REQUEST_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                    b"content-length: 36\r\nconnection: close\r\n\r\nrequest headers not received in time")


class ServerConfig(uvicorn.Config):
    """uvicorn's Config plus the header-read timeout, served by ``HeaderTimeoutProtocol``."""

    def __init__(self, app: Any, *, header_read_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, http=HeaderTimeoutProtocol, **kwargs)
        self.header_read_timeout = header_read_timeout


def server_config(app: Any, config: GatewayConfig, **kwargs: Any) -> ServerConfig:
    """The one place uvicorn learns the gateway's connection limits (CLI and test servers alike)."""
    # uvicorn answers 503 once the open connections, this one included, reach limit_concurrency:
    # one more than the cap lets exactly max_connections_per_worker connections be served.
    return ServerConfig(app, header_read_timeout=config.header_read_timeout_seconds,
                        limit_concurrency=config.max_connections_per_worker + 1, **kwargs)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the gateway says where it listens (OSError if it cannot)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)  # the workers of --num_workers inherit it
    return sock


def run_server(config: ServerConfig, sock: socket.socket) -> bool:
    """What ``uvicorn.run`` does with a Config it built itself (which cannot carry our timeout);
    False when a single-process server failed to start."""
    server = uvicorn.Server(config)
    if config.workers > 1:
        os.environ[SUPERVISOR_ENV] = str(os.getpid())
        Multiprocess(config, sockets=[sock]).run()
        return True
    server.run(sockets=[sock])
    return server.started


def exit_with_supervisor(env: Mapping[str, str]) -> None:
    """In a worker of ``--num_workers``: stop (gracefully, as on SIGTERM) once the supervisor is gone.

    uvicorn's workers do not notice their supervisor's death: after a kill -9 of it they kept serving
    on the port with nobody left to stop them. A poll of ``getppid`` (the worker is re-parented when its
    parent dies) works wherever Python does, unlike Linux's PR_SET_PDEATHSIG.
    """
    supervisor = env.get(SUPERVISOR_ENV)
    if supervisor is None:
        return  # not spawned by the CLI's supervisor (a single process, or uvicorn run by hand)
    if int(supervisor) != os.getppid():  # it died while this worker was starting: the watch would miss it
        log.warning("supervisor process [%s] is gone; worker [%d] stops", supervisor, os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)
        return
    threading.Thread(target=_watch_parent, args=(int(supervisor),), name="spangate-supervisor-watch",
                     daemon=True).start()


def _watch_parent(supervisor: int) -> None:
    stop = threading.Event()  # never set: a timed wait is the poll
    while os.getppid() == supervisor:
        stop.wait(_PARENT_POLL)
    log.warning("supervisor process [%d] is gone; worker [%d] stops", supervisor, os.getpid())
    os.kill(os.getpid(), signal.SIGTERM)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """httptools, plus a deadline from the connection's start (or a request's first byte) to the
    end of its header block. One timer per request: call_later + cancel measured at 3-4 µs (uvloop,
    asyncio), next to ~700 µs of gateway CPU per proxied call; the bench could not tell them apart."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._header_timeout: float = getattr(config, "header_read_timeout", 10.0)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a byte is held to the same deadline

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:  # the next request on a kept-alive connection
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self._header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:  # never a 408 inside another answer
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()
