"""CPU per call of the S3 and DynamoDB destinations, and S3 PUTs per 1,000 calls in each mode.

    .venv/bin/python bench/aws_archives.py [--calls 1000] [--batch 200] [--teams 1]

Chat spans shaped like the gateway's (content captured, metadata, usage, cost) go through each
exporter in batches of ``--batch`` (what the delivery layer hands over at ~1,000 calls/s with its
0.2 s batch delay), against moto's S3 and DynamoDB server in its own process on loopback. ``encode``
is the pure encoder's CPU per call; ``export`` is the CPU of this process per call for encode + boto3
(serialising, signing, sending; the S3 PUT workers included), and the wall time per 1,000 calls.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from opentelemetry.sdk.trace import ReadableSpan

from contracts import semconv as sc
from exporters.dynamodb import DynamoDBConfig, DynamoDBSpanExporter
from exporters.dynamodb.encode import encode_dynamodb
from exporters.s3 import S3Config, S3SpanExporter
from exporters.s3.encode import encode_s3
from tests.support.aws import KEY_ID, REGION, SECRET, new_bucket, new_table
from tests.support.readable_spans import CHAT_OK, span

MESSAGES = ('[{"role":"user","parts":[{"type":"text","content":"Summarise the attached meeting notes in three '
            'bullet points, keeping names and dates."}]}]')
ANSWER = ('[{"role":"assistant","parts":[{"type":"text","content":"- Ana presents the Q3 plan on 4 Dec.\\n- Budget '
          'review moves to Friday.\\n- Ben owns the hiring follow-up."}],"finish_reason":"stop"}]')


def calls(count: int, teams: int) -> list[ReadableSpan]:
    attrs = {**CHAT_OK, sc.INPUT_MESSAGES: MESSAGES, sc.OUTPUT_MESSAGES: ANSWER, sc.CALL_TYPE: "acompletion",
             sc.KEY_ALIAS: "ci", sc.REQUEST_TEMPERATURE: 0.2, sc.metadata_key("session_id"): "s-1"}
    return [span({**attrs, sc.TEAM_ID: f"team-{i % teams}"}, span_id=i + 1) for i in range(count)]


def per_call(spans: list[ReadableSpan], batch: int, work: Callable[[list[ReadableSpan]], Any]) -> float:
    """Process CPU microseconds per call of ``work`` over the spans, in batches."""
    return timed(spans, batch, work)[0]


def timed(spans: list[ReadableSpan], batch: int, work: Callable[[list[ReadableSpan]], Any]) -> tuple[float, float]:
    """(process CPU microseconds per call, wall seconds per 1,000 calls)."""
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(0, len(spans), batch):
        work(spans[i:i + batch])
    return (time.process_time() - cpu) / len(spans) * 1e6, (time.perf_counter() - wall) / len(spans) * 1000


@contextlib.contextmanager
def moto_process() -> Iterator[str]:
    """moto's server in a process of its own, so its CPU is not counted as the exporter's."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/moto-api/data.json", trust_env=False).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--teams", type=int, default=1)
    args = parser.parse_args()
    spans = calls(args.calls, args.teams)
    print(f"{args.calls} calls, batches of {args.batch}, {args.teams} team(s)")
    for mode in ("object", "ndjson"):
        cpu = per_call(spans, args.batch, lambda b, m=mode: encode_s3(b, "logs", m))
        print(f"s3 {mode:6}  encode {cpu:6.1f} us/call")
    print(f"dynamodb     encode {per_call(spans, args.batch, encode_dynamodb):6.1f} us/call")
    with moto_process() as url:
        access = {"region_name": REGION, "endpoint_url": url, "aws_access_key_id": KEY_ID,
                  "aws_secret_access_key": SECRET}
        for mode in ("object", "ndjson"):
            exporter = S3SpanExporter(S3Config.from_vars({"s3_bucket_name": new_bucket(url), "s3_batch": mode,
                                                          **{f"s3_{k}": v for k, v in access.items()}}))
            exporter.export(spans[:1])  # the client is made on first use: not part of the steady state
            exporter.puts = 0
            cpu, wall = timed(spans, args.batch, exporter.export)
            print(f"s3 {mode:6}  export {cpu:6.1f} us/call, {wall:5.2f} s per 1,000 calls, "
                  f"{exporter.puts * 1000 / len(spans):6.1f} PUTs per 1,000 calls")
            exporter.shutdown()
        exporter = DynamoDBSpanExporter(DynamoDBConfig.from_vars({
            "dynamodb_table_name": new_table(url), **{f"dynamodb_{k}": v for k, v in access.items()}}))
        exporter.export(spans[:1])
        cpu, wall = timed(spans, args.batch, exporter.export)
        print(f"dynamodb     export {cpu:6.1f} us/call, {wall:5.2f} s per 1,000 calls "
              f"({(len(spans) + 24) // 25} BatchWriteItem calls)")
        exporter.shutdown()


if __name__ == "__main__":
    main()
