"""Run the real gateway (``create_app`` on uvicorn) on a free loopback port for wire tests.

The server runs in a background thread on a socket bound before the thread starts, so the port is
known and taken before any request is sent. Leaving the ``with`` block runs the app's lifespan
shutdown, which flushes the delivery layer: after it, every span is in the ``file`` destination.

    with running_gateway({"model_list": [...]}, data_dir=tmp_path) as gw:
        OpenAI(base_url=gw.base_url + "/v1", api_key="x").chat.completions.create(...)
        [span] = gw.wait_for_spans(1)
"""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from app.config.settings import GatewayConfig, parse_config
from app.gateway.front import GatewayApp
from app.server.factory import Gateway, create_app
from app.server.serving import server_config
from processors.delivery import DeliveryConfig
from tests.support.spanlog import read_spans, wait_for_spans

START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class RunningGateway:
    base_url: str  # http://127.0.0.1:PORT, no trailing slash
    app: GatewayApp
    gateway: Gateway
    config: GatewayConfig

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    @property
    def span_log_path(self) -> Path:
        return self.config.resolved_span_log_path

    def spans(self) -> list[dict[str, Any]]:
        """Spans the ``file`` destination has written so far (may lag: delivery is asynchronous)."""
        return read_spans(self.span_log_path)

    def wait_for_spans(self, count: int, timeout: float = 10.0,
                       where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """At least ``count`` written spans (that match ``where``), polling the file destination."""
        return wait_for_spans(self.span_log_path, count, timeout, where)


def gateway_config(config: GatewayConfig | Mapping[str, Any], *, env: Mapping[str, str],
                   data_dir: Path) -> GatewayConfig:
    """A YAML-shaped dict is parsed as ``load_config`` would; ``data_dir`` is set unless the dict sets it."""
    if isinstance(config, GatewayConfig):
        return config if config.data_dir.is_absolute() else dataclasses.replace(config, data_dir=data_dir)
    raw = dict(config)
    raw["spangate_settings"] = {"data_dir": str(data_dir), **(raw.get("spangate_settings") or {})}
    return parse_config(raw, environ=env, base_dir=data_dir)


def fast_delivery(data_dir: Path) -> DeliveryConfig:
    """In-memory delivery with a short batch delay: tests wait less, and leave no spool behind."""
    return DeliveryConfig(spool_dir=data_dir / "spool", durable=False, batch_delay=0.05,
                          shutdown_flush_timeout=5.0, initial_backoff=0.05)


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@contextmanager
def running_gateway(config: GatewayConfig | Mapping[str, Any], *, env: Mapping[str, str] | None = None,
                    data_dir: Path, delivery_config: DeliveryConfig | None = None,
                    loop: str = "asyncio") -> Iterator[RunningGateway]:
    """Start the gateway; ``env`` defaults to empty so no test depends on the runner's environment."""
    env = dict(env or {})
    parsed = gateway_config(config, env=env, data_dir=data_dir)
    app = create_app(parsed, env=env, delivery_config=delivery_config or fast_delivery(data_dir))
    server = uvicorn.Server(server_config(app, parsed, loop=loop, lifespan="on", log_level="warning", ws="none",
                                          access_log=False, timeout_graceful_shutdown=5))
    sock = free_socket()
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # SystemExit from a failed lifespan startup included
            failure.append(exc)

    thread = threading.Thread(target=serve, name="spangate-test-server", daemon=True)
    thread.start()
    try:
        _wait_started(server, thread, failure)
        port = sock.getsockname()[1]
        yield RunningGateway(f"http://127.0.0.1:{port}", app, app.state["gateway"], parsed)
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join(STOP_TIMEOUT)
        sock.close()
    if thread.is_alive():
        raise AssertionError(f"gateway did not stop within {2 * STOP_TIMEOUT}s")
    if failure and not isinstance(failure[0], SystemExit):
        raise AssertionError("gateway server thread failed") from failure[0]


def _wait_started(server: uvicorn.Server, thread: threading.Thread, failure: list[BaseException]) -> None:
    done = threading.Event()
    deadline_checks = int(START_TIMEOUT / 0.01)
    for _ in range(deadline_checks):
        if server.started:
            return
        if not thread.is_alive():
            raise AssertionError("gateway failed to start (see the log above)") from (failure[0] if failure else None)
        done.wait(0.01)
    raise AssertionError(f"gateway did not start within {START_TIMEOUT}s")
