"""A loopback Sentry project: an ``HttpSink`` with a DSN pointing at it, and the envelopes it received decoded."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.sinks import HttpSink, Received, Responder

PROJECT_ID = "1"
ENVELOPE_PATH = f"/api/{PROJECT_ID}/envelope/"


@dataclass(frozen=True)
class Envelope:
    headers: dict[str, Any]
    items: list[tuple[dict[str, Any], Any]]  # (item header, JSON payload)


def parse_envelope(body: bytes) -> Envelope:
    """Sentry's envelope format: a header line, then per item a header line and a payload of ``length`` bytes."""
    first, _, rest = body.partition(b"\n")
    items = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        header = json.loads(line)
        length = header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length:].removeprefix(b"\n")
        items.append((header, json.loads(payload)))
    return Envelope(json.loads(first), items)


class SentryProject(HttpSink):
    def __init__(self, respond: Responder | None = None, public_key: str = "public") -> None:
        super().__init__(respond)
        self.public_key = public_key

    @property
    def dsn(self) -> str:
        return f"http://{self.public_key}@{self.url.removeprefix('http://')}/{PROJECT_ID}"

    def events(self) -> list[dict[str, Any]]:
        """Every event payload received, in arrival order."""
        return [payload for req in list(self.requests) for header, payload in parse_envelope(req.body).items
                if header["type"] == "event"]

    def wait_for_events(self, count: int, where: Callable[[dict[str, Any]], bool] = lambda _e: True,
                        timeout: float = 10.0) -> list[dict[str, Any]]:
        self.wait_for(lambda _reqs: len([e for e in self.events() if where(e)]) >= count, timeout)
        return [e for e in self.events() if where(e)]

    def assert_wire_format(self) -> None:
        for req in self.requests:
            assert_envelope_request(req, self.public_key)


def assert_envelope_request(req: Received, public_key: str) -> None:
    assert (req.method, req.path) == ("POST", ENVELOPE_PATH)
    assert req.headers["x-sentry-auth"].startswith(f"Sentry sentry_key={public_key}, sentry_version=7, ")
    assert req.headers["content-type"] == "application/x-sentry-envelope"
    assert req.headers["content-encoding"] == "gzip"
