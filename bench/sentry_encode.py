"""Cost per failed span of the Sentry destination, without the network: ``python -m bench.sentry_encode``.

Two figures: the pure encoder (span -> event dict), and what the exporter adds before the POST
(sentry-sdk's ``capture_event``: its event processing and serialisation into an envelope, then gzip).
"""

from __future__ import annotations

import gzip
import timeit

import httpx

from contracts import semconv as sc
from exporters.sentry_events import RELEASE, SentryConfig, SentrySpanExporter
from exporters.sentry_events.encode import encode_sentry
from tests.support.readable_spans import CHAT_ERROR, error_span

PROXY = {sc.TEAM_ID: "team-a", sc.TEAM_ALIAS: "Team A", sc.KEY_ALIAS: "ci-key", sc.MODEL_GROUP: "gpt-4o-mini",
         sc.CALL_TYPE: "acompletion", sc.END_USER: "user-7", sc.metadata_key("job"): "nightly"}
SPAN = error_span({**CHAT_ERROR, **PROXY})


def per_call(label: str, fn, number: int) -> None:
    best = min(timeit.repeat(fn, number=number, repeat=5)) / number
    print(f"{label}: {best * 1e6:.1f} us per span")


def main() -> None:
    per_call("encode_sentry (span -> event dict)", lambda: encode_sentry([SPAN]), 20_000)
    with httpx.Client() as client:
        config = SentryConfig.from_vars({"sentry_dsn": "http://public@127.0.0.1:9/1"})
        exporter = SentrySpanExporter(config, client, release=RELEASE)
        per_call("encode + sentry-sdk envelope + gzip", lambda: [gzip.compress(e.serialize(), compresslevel=6)
                 for e in exporter._envelopes(encode_sentry([SPAN]))], 2_000)
        exporter.shutdown()


if __name__ == "__main__":
    main()
