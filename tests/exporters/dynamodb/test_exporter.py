"""DynamoDBSpanExporter against moto's DynamoDB server on loopback, driven by boto3; faults from a front."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

from contracts import semconv as sc
from exporters.dynamodb import DynamoDBConfig, DynamoDBSpanExporter
from exporters.dynamodb.encode import MAX_ITEM_BYTES, encode_dynamodb
from tests.support.aws import (
    KEY_ID,
    REGION,
    SECRET,
    FaultyAws,
    dynamodb_error,
    moto_server,
    new_table,
    table_items,
)
from tests.support.readable_spans import CHAT_OK, span
from tests.support.sinks import Received, Reply


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as url:
        yield url


def exporter_for(endpoint: str, table: str) -> DynamoDBSpanExporter:
    return DynamoDBSpanExporter(DynamoDBConfig.from_vars({
        "dynamodb_table_name": table, "dynamodb_region_name": REGION, "dynamodb_endpoint_url": endpoint,
        "dynamodb_aws_access_key_id": KEY_ID, "dynamodb_aws_secret_access_key": SECRET}))


def calls(count: int) -> list:
    return [span({**CHAT_OK, sc.TEAM_ID: "team-a", sc.CALL_TYPE: "acompletion"}, span_id=i + 1) for i in range(count)]


def by_id(items: list[dict]) -> dict[str, dict]:
    return {item["id"]: item for item in items}


def test_items_are_written_25_per_batch_and_read_back_whole(moto: str) -> None:
    table, batch = new_table(moto), calls(60)
    with FaultyAws(moto) as front:
        exporter = exporter_for(front.url, table)
        assert exporter.export(batch) is SpanExportResult.SUCCESS, exporter.last_failure
        exporter.shutdown()
    assert by_id(table_items(moto, table)) == by_id(encode_dynamodb(batch).items)
    sizes = [len(json.loads(r.body)["RequestItems"][table]) for r in front.requests]
    assert sizes == [25, 25, 10]
    assert {r.headers["x-amz-target"] for r in front.requests} == {"DynamoDB_20120810.BatchWriteItem"}
    assert all(f"Credential={KEY_ID}/" in r.headers["authorization"] for r in front.requests)
    item = by_id(table_items(moto, table))[encode_dynamodb(batch[:1]).items[0]["id"]]
    assert (item["prompt_tokens"], item["response_cost"], item["call_type"]) == (
        Decimal(12), Decimal("0.0000198"), "acompletion")


def unprocessed_all(table: str):
    """DynamoDB's answer when it took none of the batch (throttled partitions)."""
    def reply(req: Received) -> Reply:
        pending = json.loads(req.body)["RequestItems"][table]
        return Reply(body=json.dumps({"UnprocessedItems": {table: pending}}).encode(),
                     headers={"Content-Type": "application/x-amz-json-1.0"})
    return reply


def test_unprocessed_items_are_sent_again_within_the_export(moto: str) -> None:
    table, batch = new_table(moto), calls(3)
    with FaultyAws(moto, [unprocessed_all(table), unprocessed_all(table)]) as front:
        exporter = exporter_for(front.url, table)
        assert exporter.export(batch) is SpanExportResult.SUCCESS, exporter.last_failure
        exporter.shutdown()
    assert len(front.requests) == 3
    assert by_id(table_items(moto, table)) == by_id(encode_dynamodb(batch).items)


def test_throttling_fails_retryable_and_the_retried_batch_loses_nothing(moto: str) -> None:
    table, batch = new_table(moto), calls(30)
    faults = [unprocessed_all(table)] * 4 + [dynamodb_error("ProvisionedThroughputExceededException")]
    with FaultyAws(moto, faults) as front:
        exporter = exporter_for(front.url, table)
        for reason in ("throttled (unprocessed items)", "AWS ProvisionedThroughputExceededException"):
            assert exporter.export(batch) is SpanExportResult.FAILURE
            assert exporter.last_failure is not None and exporter.last_failure.retryable
            assert exporter.last_failure.reason == reason
        assert exporter.export(batch) is SpanExportResult.SUCCESS  # the delivery layer's next attempt
        exporter.shutdown()
    assert by_id(table_items(moto, table)) == by_id(encode_dynamodb(batch).items)


def test_a_missing_table_and_a_bad_request_are_permanent(moto: str) -> None:
    exporter = exporter_for(moto, "no-such-table")
    assert exporter.export(calls(1)) is SpanExportResult.FAILURE
    assert exporter.last_failure is not None and not exporter.last_failure.retryable
    exporter.shutdown()
    with FaultyAws(moto, [dynamodb_error("ValidationException")]) as front:
        exporter = exporter_for(front.url, new_table(moto))
        assert exporter.export(calls(1)) is SpanExportResult.FAILURE
        exporter.shutdown()
    assert exporter.last_failure is not None and not exporter.last_failure.retryable


def test_an_item_over_400_kb_is_stored_truncated_and_counted(moto: str) -> None:
    table = new_table(moto)
    message = {"role": "user", "parts": [{"type": "text", "content": "x" * 500_000}]}
    content = json.dumps([message], separators=(",", ":"))
    big = span({**CHAT_OK, sc.INPUT_MESSAGES: content}, span_id=99)
    exporter = exporter_for(moto, table)
    assert exporter.export([big, *calls(2)]) is SpanExportResult.SUCCESS, exporter.last_failure
    exporter.shutdown()
    stored = by_id(table_items(moto, table))
    [item] = [i for i in stored.values() if "truncated" in i]
    assert item["truncated"] == ["messages"] and len(item["messages"]) < MAX_ITEM_BYTES
    assert json.loads(item["messages"])["original_bytes"] == len(content)
    assert exporter.truncated_items == 1 and len(stored) == 3
