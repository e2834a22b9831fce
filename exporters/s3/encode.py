"""Gateway spans -> the S3 objects that archive them. Pure: no client, no clock, no environment.

Keys are Hive-style partitions, so Athena, DuckDB, Spark and Glue read the team, day and hour
from the path and skip what a query does not need::

    <s3_path>/team=<team id>/dt=YYYY-MM-DD/hour=HH/<trace id>-<span id>.json          (default)
    <s3_path>/team=<team id>/dt=YYYY-MM-DD/hour=HH/<first call id>-<digest>.ndjson.gz  (s3_batch: ndjson)

The date and hour are the call's start, in UTC. The team id is percent-encoded (a ``/`` in it would
add a level); calls of no team go under ``__HIVE_DEFAULT_PARTITION__``, which Hive and Athena read as
NULL. Every key is a function of the calls it holds, so a retried batch overwrites its own objects
instead of writing them twice; an NDJSON object's digest covers the ids of all its calls.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import msgspec
from opentelemetry.sdk.trace import ReadableSpan

from contracts import semconv as sc
from exporters.encode.call_record import call_id, call_record

__all__ = ["NO_TEAM", "S3Object", "encode_s3", "partition"]

NO_TEAM = "__HIVE_DEFAULT_PARTITION__"
JSON_TYPE = "application/json"
NDJSON_TYPE = "application/x-ndjson"
# An NDJSON flush of chat records compresses ~8x at level 6; it is stored for months and read
# by scans billed per byte, so the extra CPU over level 1 (once, on the export thread) pays back.
GZIP_LEVEL = 6
_encode = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class S3Object:
    key: str
    body: bytes
    content_type: str
    content_encoding: str | None = None


def partition(span: ReadableSpan, path: str) -> str:
    """``<path>/team=<id>/dt=YYYY-MM-DD/hour=HH/`` for the span's team and start (UTC)."""
    team = (span.attributes or {}).get(sc.TEAM_ID)
    when = datetime.fromtimestamp((span.start_time or 0) // 10**9, tz=UTC)
    team_part = quote(str(team), safe="") if team else NO_TEAM
    prefix = f"{path}/" if path else ""
    return f"{prefix}team={team_part}/dt={when:%Y-%m-%d}/hour={when:%H}/"


def encode_s3(spans: Sequence[ReadableSpan], path: str, batch: str = "object") -> list[S3Object]:
    if batch == "ndjson":
        return _ndjson_objects(spans, path)
    return [S3Object(f"{partition(s, path)}{call_id(s)}.json", _encode.encode(call_record(s)), JSON_TYPE)
            for s in spans]


def _ndjson_objects(spans: Sequence[ReadableSpan], path: str) -> list[S3Object]:
    groups: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        groups.setdefault(partition(span, path), []).append(span)
    return [_ndjson_object(prefix, members) for prefix, members in groups.items()]


def _ndjson_object(prefix: str, spans: list[ReadableSpan]) -> S3Object:
    ids = [call_id(s) for s in spans]
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
    lines: list[Any] = [_encode.encode(call_record(s)) + b"\n" for s in spans]
    body = gzip.compress(b"".join(lines), compresslevel=GZIP_LEVEL, mtime=0)  # mtime 0: same batch, same bytes
    return S3Object(f"{prefix}{ids[0]}-{digest}.ndjson.gz", body, NDJSON_TYPE, "gzip")
