"""S3SpanExporter against moto's S3 server on loopback, driven by boto3; faults from a front proxy."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

from contracts import semconv as sc
from exporters.aws import make_client
from exporters.encode.call_record import call_record
from exporters.s3 import S3Config, S3SpanExporter
from tests.support.aws import KEY_ID, REGION, SECRET, FaultyAws, moto_server, new_bucket, s3_error, s3_objects
from tests.support.readable_spans import CHAT_OK, error_span, span

PARTITION = "dt=2026-01-01/hour=00"


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as url:
        yield url


def config(endpoint: str, bucket: str, **extra: str) -> S3Config:
    return S3Config.from_vars({"s3_bucket_name": bucket, "s3_region_name": REGION, "s3_endpoint_url": endpoint,
                               "s3_aws_access_key_id": KEY_ID, "s3_aws_secret_access_key": SECRET, **extra})


def spans() -> list:
    return [span({**CHAT_OK, sc.TEAM_ID: "team-a"}, span_id=1), span({**CHAT_OK, sc.TEAM_ID: "team-b"}, span_id=2),
            error_span({sc.OPERATION_NAME: sc.OP_CHAT, sc.TEAM_ID: "team-a", sc.ERROR_TYPE: "timeout"})]


def test_one_json_object_per_call_read_back_whole_and_signed_with_the_destinations_keys(moto: str) -> None:
    bucket = new_bucket(moto)
    batch = spans()
    with FaultyAws(moto) as front:
        exporter = S3SpanExporter(config(front.url, bucket, s3_path="litellm"))
        assert exporter.export(batch) is SpanExportResult.SUCCESS, exporter.last_failure
        exporter.shutdown()
    ids = [f"{s.get_span_context().trace_id:032x}-{s.get_span_context().span_id:016x}" for s in batch]
    objects = {key: {**obj, "body": json.loads(obj["body"])} for key, obj in s3_objects(moto, bucket).items()}
    assert objects == {
        f"litellm/team={team}/{PARTITION}/{call}.json": {"body": call_record(s), "content_type": "application/json",
                                                         "content_encoding": None}
        for team, call, s in zip(("team-a", "team-b", "team-a"), ids, batch, strict=True)}
    assert [(r.method, r.path.split("/")[1]) for r in front.requests] == [("PUT", bucket)] * 3
    assert all(r.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY_ID}/")
               for r in front.requests)
    assert exporter.puts == 3


def test_a_large_batch_is_written_whole_with_puts_in_parallel(moto: str) -> None:
    bucket = new_bucket(moto)
    exporter = S3SpanExporter(config(moto, bucket))
    assert exporter.export([span(CHAT_OK, span_id=i + 1) for i in range(40)]) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert exporter.puts == 40 and len(s3_objects(moto, bucket)) == 40


def test_ndjson_mode_writes_one_gzipped_object_per_partition(moto: str) -> None:
    bucket = new_bucket(moto)
    batch = spans()
    exporter = S3SpanExporter(config(moto, bucket, s3_batch="ndjson"))
    assert exporter.export(batch) is SpanExportResult.SUCCESS, exporter.last_failure
    exporter.shutdown()
    objects = s3_objects(moto, bucket)
    assert sorted(k.rsplit("/", 1)[0] for k in objects) == [f"team=team-a/{PARTITION}", f"team=team-b/{PARTITION}"]
    by_team = {k.split("/")[0]: v for k, v in objects.items()}
    assert {v["content_type"] for v in objects.values()} == {"application/x-ndjson"}
    assert {v["content_encoding"] for v in objects.values()} == {"gzip"}
    lines = gzip.decompress(by_team["team=team-a"]["body"]).decode().splitlines()
    assert [json.loads(line) for line in lines] == [call_record(batch[0]), call_record(batch[2])]
    assert exporter.puts == 2


def test_slow_down_is_retried_with_its_retry_after_and_nothing_is_lost(moto: str) -> None:
    bucket = new_bucket(moto)
    with FaultyAws(moto, [s3_error("SlowDown", 503, {"Retry-After": "3"})]) as front:
        exporter = S3SpanExporter(config(front.url, bucket))
        assert exporter.export(spans()) is SpanExportResult.FAILURE
        assert len(front.requests) == 1  # the first PUT probes: a throttled bucket is not sent the rest
        failure = exporter.last_failure
        assert failure is not None and (failure.retryable, failure.retry_after, failure.status) == (True, 3.0, 503)
        assert exporter.export(spans()) is SpanExportResult.SUCCESS  # what the delivery layer does next
        exporter.shutdown()
    assert len(s3_objects(moto, bucket)) == 3


@pytest.mark.parametrize(("reply", "retryable", "too_large"), [
    (s3_error("AccessDenied", 403), False, False),
    (s3_error("EntityTooLarge", 400), True, True),
    (s3_error("InternalError", 500), True, False),
])
def test_errors_from_s3_map_onto_the_delivery_contract(moto: str, reply, retryable: bool, too_large: bool) -> None:
    with FaultyAws(moto, [reply]) as front:
        exporter = S3SpanExporter(config(front.url, new_bucket(moto)))
        assert exporter.export(spans()) is SpanExportResult.FAILURE
        exporter.shutdown()
    assert exporter.last_failure is not None
    assert (exporter.last_failure.retryable, exporter.last_failure.too_large) == (retryable, too_large)


def test_a_missing_bucket_is_permanent_and_a_refused_connection_retryable(moto: str) -> None:
    exporter = S3SpanExporter(config(moto, "no-such-bucket-here"))
    assert exporter.export(spans()) is SpanExportResult.FAILURE
    assert exporter.last_failure is not None and not exporter.last_failure.retryable
    assert exporter.last_failure.reason == "AWS NoSuchBucket"
    exporter.shutdown()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    exporter = S3SpanExporter(config(f"http://127.0.0.1:{port}", "logs"))
    assert exporter.export(spans()) is SpanExportResult.FAILURE
    assert exporter.last_failure is not None and exporter.last_failure.retryable
    exporter.shutdown()


def test_the_client_is_made_on_the_exporting_thread_and_closed_at_shutdown(moto: str) -> None:
    made_on: list[str] = []
    cfg = config(moto, new_bucket(moto))

    def factory():
        made_on.append(threading.current_thread().name)
        return make_client("s3", cfg.access)

    exporter = S3SpanExporter(cfg, factory)
    assert made_on == []  # building the exporter (on the event loop) makes no client
    worker = threading.Thread(target=exporter.export, args=(spans(),), name="delivery-0")
    worker.start()
    worker.join(10)
    exporter.export(spans())
    assert made_on == ["delivery-0"]
    exporter.shutdown()
    assert exporter.export(spans()) is SpanExportResult.FAILURE and not exporter.last_failure.retryable


CHAIN_SCRIPT = """
import sys
from exporters.aws import GatewayVars
from exporters.s3 import S3Config, S3SpanExporter
from tests.support.readable_spans import CHAT_OK, span
exporter = S3SpanExporter(S3Config.from_vars(GatewayVars(s3_bucket_name=sys.argv[1], s3_endpoint_url=sys.argv[2],
                                                         s3_region_name="eu-west-1")))
ok = exporter.export([span(CHAT_OK)])
print(ok.name, exporter.last_failure)
"""


def test_without_keys_the_gateway_wide_form_uses_boto3s_credential_chain(moto: str, tmp_path: Path) -> None:
    """A profile in the shared credentials file (a subprocess: the chain reads the process environment)."""
    (tmp_path / "credentials").write_text("[default]\naws_access_key_id = AKIAFROMPROFILE01\n"
                                          "aws_secret_access_key = from-the-profile\n")
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.getcwd(), "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"), "AWS_CONFIG_FILE": str(tmp_path / "none")}
    bucket = new_bucket(moto)
    with FaultyAws(moto) as front:
        run = subprocess.run([sys.executable, "-c", CHAIN_SCRIPT, bucket, front.url], env=env, capture_output=True,
                             text=True, timeout=60)
    assert run.stdout.strip() == "SUCCESS None", run.stderr
    assert "Credential=AKIAFROMPROFILE01/" in front.requests[0].headers["authorization"]
    assert len(s3_objects(moto, bucket)) == 1
