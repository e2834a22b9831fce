"""The Bedrock fake, proven with boto3's own bedrock-runtime client before anything else trusts it.

boto3 renders the path, signs with SigV4, and parses Converse's JSON and ConverseStream's binary
event stream by the service model: if the fake took or answered anything the real service would
not, these tests fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

from tests.support.aws import moto_server
from tests.support.fake_bedrock import FakeBedrock, Reply, moto_sts_lookup

REGION = "us-west-2"
KEY_ID, SECRET = "AKIAFAKEBEDROCK00001", "fake-bedrock-secret/" + "k" * 20
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
PROFILE_ARN = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock(credentials={KEY_ID: SECRET}, region=REGION, lookup=moto_sts_lookup) as running:
        yield running


def runtime(fake: FakeBedrock, secret: str = SECRET, **keys: Any) -> Any:
    session = boto3.session.Session(aws_access_key_id=keys.get("key_id", KEY_ID), aws_secret_access_key=secret,
                                    aws_session_token=keys.get("token"), region_name=REGION)
    return session.client("bedrock-runtime", endpoint_url=fake.url,
                          config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))


USER = [{"role": "user", "content": [{"text": "hello there"}]}]


def test_boto3_converse_is_answered_and_read(fake: FakeBedrock) -> None:
    fake.script(Reply(text="Hi! How can I help?"))
    got = runtime(fake).converse(modelId=MODEL, messages=USER, system=[{"text": "be brief"}],
                                 inferenceConfig={"maxTokens": 64, "temperature": 0.5})
    assert got["output"]["message"] == {"role": "assistant", "content": [{"text": "Hi! How can I help?"}]}
    assert got["stopReason"] == "end_turn"
    assert got["usage"] == {"inputTokens": 11, "outputTokens": 7, "cacheReadInputTokens": 3,
                            "cacheWriteInputTokens": 2, "totalTokens": 23}
    seen = fake.requests[-1]
    assert seen.path == "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse" and seen.model_id == MODEL
    assert seen.body["inferenceConfig"] == {"maxTokens": 64, "temperature": 0.5}


def test_boto3_converse_stream_is_decoded_event_by_event(fake: FakeBedrock) -> None:
    fake.script(Reply(text="one two three"))
    events = list(runtime(fake).converse_stream(modelId=MODEL, messages=USER)["stream"])
    names = [next(iter(e)) for e in events]
    assert names == ["messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockDelta",
                     "contentBlockStop", "messageStop", "metadata"]
    assert "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e) == \
        "one two three"
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    assert events[-1]["metadata"]["usage"]["totalTokens"] == 23
    assert fake.requests[-1].stream


def test_boto3_reads_streamed_tool_use_and_an_inference_profile_arn_in_the_path(fake: FakeBedrock) -> None:
    use = {"toolUseId": "tooluse_1", "name": "weather", "input": {"city": "Paris"}}
    fake.script(Reply(tool_uses=[use]))
    tools = {"tools": [{"toolSpec": {"name": "weather", "inputSchema": {"json": {"type": "object"}}}}],
             "toolChoice": {"any": {}}}
    events = list(runtime(fake).converse_stream(modelId=PROFILE_ARN, messages=USER, toolConfig=tools)["stream"])
    start = next(e["contentBlockStart"] for e in events if "contentBlockStart" in e)
    assert start["start"]["toolUse"] == {"toolUseId": "tooluse_1", "name": "weather"}
    pieces = [e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events if "contentBlockDelta" in e]
    assert "".join(pieces) == '{"city": "Paris"}'
    assert fake.requests[-1].model_id == PROFILE_ARN and "%2F" in fake.requests[-1].path


def test_a_tool_round_trip_is_accepted_in_converse_shape(fake: FakeBedrock) -> None:
    tools = {"tools": [{"toolSpec": {"name": "weather", "inputSchema": {"json": {"type": "object"}}}}]}
    messages = [*USER, {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "weather",
                                                                       "input": {"city": "Oslo"}}}]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "-3C"}]}}]}]
    got = runtime(fake).converse(modelId=MODEL, messages=messages, toolConfig=tools)
    assert got["output"]["message"]["content"][0]["text"].startswith("You said:")


@pytest.mark.parametrize("case", ["wrong secret", "unknown key"])
def test_a_bad_signature_is_refused_as_aws_refuses_it(fake: FakeBedrock, case: str) -> None:
    client = runtime(fake, secret="not-the-secret") if case == "wrong secret" else runtime(fake, key_id="AKIAUNKNOWN")
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=MODEL, messages=USER)
    expected = "InvalidSignatureException" if case == "wrong secret" else "UnrecognizedClientException"
    assert caught.value.response["Error"]["Code"] == expected
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_converse_rules_are_enforced(fake: FakeBedrock) -> None:
    client = runtime(fake)
    for messages in ([{"role": "assistant", "content": [{"text": "hi"}]}], [*USER, *USER],
                     [{"role": "user", "content": [{"text": "  "}]}],
                     [{"role": "user", "content": [{"toolResult": {"toolUseId": "x", "content": [{"text": "y"}]}}]}]):
        with pytest.raises(ClientError) as caught:
            client.converse(modelId=MODEL, messages=messages)
        assert caught.value.response["Error"]["Code"] == "ValidationException"


def test_scripted_errors_are_the_exceptions_boto3_knows(fake: FakeBedrock) -> None:
    client = runtime(fake)
    fake.script(Reply(status=429, error_type="ThrottlingException", message="Too many requests"))
    with pytest.raises(client.exceptions.ThrottlingException, match="Too many requests"):
        client.converse(modelId=MODEL, messages=USER)
    fake.script(Reply(text="partial answer", stream_exception="throttlingException", message="slow down"))
    with pytest.raises(EventStreamError, match="slow down") as caught:  # what botocore raises mid-stream
        list(client.converse_stream(modelId=MODEL, messages=USER)["stream"])
    assert caught.value.response["Error"]["Code"] == "throttlingException"


def test_temporary_keys_from_moto_sts_are_verified_with_their_token(fake: FakeBedrock) -> None:
    with moto_server() as sts_url:
        sts = boto3.session.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                                    region_name=REGION).client("sts", endpoint_url=sts_url)
        creds = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/bedrock-caller",
                                RoleSessionName="proof")["Credentials"]
        sts.close()
        temp = {"key_id": creds["AccessKeyId"], "token": creds["SessionToken"]}
        got = runtime(fake, secret=creds["SecretAccessKey"], **temp).converse(modelId=MODEL, messages=USER)
        assert got["stopReason"] == "end_turn"
        with pytest.raises(ClientError) as caught:
            runtime(fake, secret=creds["SecretAccessKey"], key_id=temp["key_id"], token="forged").converse(
                modelId=MODEL, messages=USER)
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
