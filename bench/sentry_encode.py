"""Cost per failed span of the Sentry destination, without the network: ``python -m bench.sentry_encode``.

Two figures: the pure encoder (span -> event dict), and the whole export of one failed span against an
``httpx.MockTransport`` that accepts everything (sentry-sdk's event processing and serialisation into
an envelope, gzip, and httpx building the request).
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from typing import Any

import httpx

from contracts import semconv as sc
from exporters.sentry_events import RELEASE, SentryConfig, SentrySpanExporter
from exporters.sentry_events.encode import encode_sentry
from tests.support.readable_spans import CHAT_ERROR, error_span

PROXY = {sc.TEAM_ID: "team-a", sc.TEAM_ALIAS: "Team A", sc.KEY_ALIAS: "ci-key", sc.MODEL_GROUP: "gpt-4o-mini",
         sc.CALL_TYPE: "acompletion", sc.END_USER: "user-7", sc.metadata_key("job"): "nightly"}
SPAN = error_span({**CHAT_ERROR, **PROXY})


def per_call(label: str, fn: Callable[[], Any], number: int) -> None:
    best = min(timeit.repeat(fn, number=number, repeat=5)) / number
    print(f"{label}: {best * 1e6:.1f} us per span")


def main() -> None:
    per_call("encode_sentry (span -> event dict)", lambda: encode_sentry([SPAN]), 20_000)
    accept = httpx.MockTransport(lambda _request: httpx.Response(200, json={}))
    with httpx.Client(transport=accept) as client:
        config = SentryConfig.from_vars({"sentry_dsn": "http://public@127.0.0.1:9/1"})
        exporter = SentrySpanExporter(config, client, release=RELEASE)
        per_call("export (encode + sentry-sdk envelope + gzip + request)", lambda: exporter.export([SPAN]), 2_000)
        assert exporter.last_failure is None
        exporter.shutdown()


if __name__ == "__main__":
    main()
