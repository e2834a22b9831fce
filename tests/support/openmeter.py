"""A loopback OpenMeter stand-in: checks each ingest request as OpenMeter's API would and keeps the events.

It answers 204 (OpenMeter's answer to an accepted batch) unless a test scripts another reply, and
like OpenMeter it keeps one event per ``(source, id)``, so a test can tell a resent batch from new usage.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.support.sinks import HttpSink, Received, Reply, Responder

EVENTS_PATH = "/api/v1/events"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
ACCEPTED = Reply(status=204, body=b"", headers={})


def accepted(_request: Received) -> Reply:
    return ACCEPTED


def cloudevents(request: Received) -> list[dict[str, Any]]:
    """The events of one batch request, each checked for what CloudEvents 1.0 and OpenMeter require."""
    events = json.loads(request.body)
    assert isinstance(events, list), events
    for event in events:
        assert event["specversion"] == "1.0", event
        for name in ("id", "source", "type", "subject"):
            assert isinstance(event[name], str) and event[name], (name, event)
        datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
        assert isinstance(event["data"], dict), event
    return events


@dataclass
class OpenMeterSink:
    """One OpenMeter instance on 127.0.0.1 with its own API key; use as a context manager."""

    respond: Responder = accepted
    api_key: str = field(default_factory=lambda: f"om_{secrets.token_hex(12)}")
    sink: HttpSink = field(init=False)
    _statuses: dict[int, int] = field(init=False, default_factory=dict)  # id(request) -> status answered

    def __post_init__(self) -> None:
        self.sink = HttpSink(self._answer)

    def _answer(self, request: Received) -> Reply:
        reply = self.respond(request)
        self._statuses[id(request)] = reply.status
        return reply

    def __enter__(self) -> OpenMeterSink:
        self.sink.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sink.__exit__(*exc)

    @property
    def url(self) -> str:
        return self.sink.url

    @property
    def requests(self) -> list[Received]:
        return self.sink.requests

    def statuses(self) -> list[int]:
        """The status answered to each request, in arrival order."""
        return [self._statuses[id(request)] for request in list(self.sink.requests)]

    def events(self) -> list[dict[str, Any]]:
        """Every event of every request, resent ones included, in arrival order."""
        return [event for request in list(self.sink.requests) for event in cloudevents(request)]

    def stored(self) -> dict[tuple[str, str], dict[str, Any]]:
        """What OpenMeter keeps: the first event per ``(source, id)`` of the requests it accepted."""
        kept: dict[tuple[str, str], dict[str, Any]] = {}
        for request in list(self.sink.requests):
            if self._statuses[id(request)] < 300:
                for event in cloudevents(request):
                    kept.setdefault((event["source"], event["id"]), event)
        return kept

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0) -> None:
        self.sink.wait_for(lambda _requests: predicate(self.events()), timeout)

    def assert_wire_format(self) -> None:
        """Every request: the ingest path, this instance's Bearer key, the batch content type, no gzip."""
        assert self.sink.requests, "OpenMeter received nothing"
        for request in self.sink.requests:
            assert (request.method, request.path) == ("POST", EVENTS_PATH)
            assert request.headers["authorization"] == f"Bearer {self.api_key}", "foreign credentials"
            assert request.headers["content-type"] == BATCH_CONTENT_TYPE
            assert "content-encoding" not in request.headers
