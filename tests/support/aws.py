"""AWS stand-ins on loopback: moto in server mode, reached by real boto3 clients, and a faulty front.

``moto_server()`` runs ``ThreadedMotoServer`` on 127.0.0.1 (state is per process: it is reset on
entry). ``FaultyAws`` is an ``HttpSink`` in front of it that answers scripted faults first (a
throttled table, a slow-down from S3) and forwards every other request to moto unchanged.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import httpx
from moto.server import ThreadedMotoServer

from tests.support.sinks import HttpSink, Received, Reply

REGION = "eu-west-1"
KEY_ID = "AKIASPANGATETEST0001"
SECRET = "spangate-test-secret-" + "x" * 19


@contextmanager
def moto_server() -> Iterator[str]:
    """The endpoint URL of a fresh moto server."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        httpx.post(f"{url}/moto-api/reset", trust_env=False).raise_for_status()
        yield url
    finally:
        server.stop()


def client(service: str, endpoint: str) -> Any:
    """A plain boto3 client for setting up and reading back, independent of the gateway's code."""
    session = boto3.session.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name=REGION)
    return session.client(service, endpoint_url=endpoint)


def new_bucket(endpoint: str) -> str:
    name = f"spangate-logs-{secrets.token_hex(4)}"
    client("s3", endpoint).create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return name


def new_table(endpoint: str) -> str:
    name = f"spangate-calls-{secrets.token_hex(4)}"
    client("dynamodb", endpoint).create_table(
        TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    return name


def s3_objects(endpoint: str, bucket: str) -> dict[str, dict[str, Any]]:
    """Every object of ``bucket``: key -> {body, content_type, content_encoding}."""
    s3 = client("s3", endpoint)
    out = {}
    for entry in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        got = s3.get_object(Bucket=bucket, Key=entry["Key"])
        out[entry["Key"]] = {"body": got["Body"].read(), "content_type": got.get("ContentType"),
                             "content_encoding": got.get("ContentEncoding")}
    return out


def table_items(endpoint: str, table: str) -> list[dict[str, Any]]:
    return boto3.session.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name=REGION).resource(
        "dynamodb", endpoint_url=endpoint).Table(table).scan()["Items"]


def dynamodb_error(code: str, status: int = 400) -> Reply:
    return Reply(status=status, body=f'{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{code}"}}'
                 .encode(), headers={"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code})


def s3_error(code: str, status: int, headers: dict[str, str] | None = None) -> Reply:
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{code}</Message></Error>"
    return Reply(status=status, body=body.encode(), headers={"Content-Type": "application/xml", **(headers or {})})


Fault = Reply | Callable[[Received], Reply]


class FaultyAws(HttpSink):
    """Answers ``faults`` in order (one per request; a callable sees the request), then forwards to ``target``."""

    def __init__(self, target: str, faults: list[Fault] | None = None) -> None:
        self.faults = list(faults or [])
        self._target = target
        self._forward = httpx.Client(base_url=target, trust_env=False, timeout=10)
        super().__init__(self._answer)

    def _answer(self, req: Received) -> Reply:
        if self.faults:
            fault = self.faults.pop(0)
            return fault if isinstance(fault, Reply) else fault(req)
        headers = {k: v for k, v in req.headers.items() if k not in ("host", "content-length", "connection")}
        answer = self._forward.request(req.method, req.path, content=req.raw_body, headers=headers)
        return Reply(status=answer.status_code, body=answer.content,
                     headers={k: v for k, v in answer.headers.items()
                              if k.lower() not in ("content-length", "transfer-encoding", "connection", "date",
                                                   "server")})

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._forward.close()
