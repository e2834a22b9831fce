"""Cost per span of the Datadog destination's CPU work, one-off: ``python bench/datadog_encode.py``.

Three figures for a typical chat span (usage, team, key alias, metadata; no captured content):
the pure encoder (``encode_datadog``), the same plus datadog-api-client's model objects
(``HTTPLogItem``/``HTTPLog``; type-checked by default, unchecked as the exporter builds them) and
the request body the library builds (its ``json.dumps`` and gzip), all per span in a batch of 512.
"""

from __future__ import annotations

import json
import timeit
import zlib

from datadog_api_client.model_utils import data_to_dict  # the library's own model -> JSON step
from datadog_api_client.v2.model.http_log import HTTPLog
from datadog_api_client.v2.model.http_log_item import HTTPLogItem

from contracts import semconv as sc
from exporters.datadog_logs.encode import LogLabels, encode_datadog
from exporters.datadog_logs.exporter import _http_log
from tests.support.readable_spans import CHAT_OK, span

BATCH = 512
LABELS = LogLabels("spangate", "spangate", "prod")
ATTRIBUTES = {**CHAT_OK, sc.TEAM_ID: "team-alpha", sc.TEAM_ALIAS: "Alpha", sc.KEY_ALIAS: "ci",
              sc.KEY_HASH: "ab" * 32, sc.metadata_key("run"): "r-1", sc.metadata_key("tags"): '["a","b"]'}
SPANS = [span(ATTRIBUTES, span_id=i + 1) for i in range(BATCH)]


def encode() -> object:
    return encode_datadog(SPANS, LABELS)


def checked_models() -> object:
    return [HTTPLog([HTTPLogItem(**item) for item in chunk]) for chunk in encode()]


def models() -> object:
    return [_http_log(chunk) for chunk in encode()]  # what the exporter builds


def body() -> bytes:
    (log,) = models()
    compressor = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    return compressor.compress(json.dumps(data_to_dict(log)).encode()) + compressor.flush()


def per_span_us(fn: object, number: int = 5) -> float:
    best = min(timeit.repeat(fn, number=number, repeat=5))  # type: ignore[arg-type]
    return best / number / BATCH * 1e6


if __name__ == "__main__":
    for name, fn in (("encode_datadog", encode), ("+ type-checked models", checked_models),
                     ("+ models (exporter)", models), ("+ JSON and gzip", body)):
        print(f"{name:24s} {per_span_us(fn):7.1f} us/span")
