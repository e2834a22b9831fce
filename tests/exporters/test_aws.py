"""S3 and DynamoDB settings: team vars, the gateway-wide form, and botocore errors mapped."""

from __future__ import annotations

import io
from pathlib import Path

import botocore.exceptions
import httpx
import pytest

from app.config.settings import parse_config
from app.teams.routing import config_team_specs, global_specs
from contracts.failures import ExportFailure
from exporters.aws import AwsAccess, GatewayVars, failure_from_aws
from exporters.dynamodb import DynamoDBConfig
from exporters.registry import BuildContext, builtin_registry
from exporters.s3 import S3Config

KEYS = {"s3_aws_access_key_id": "AKIAEXAMPLE", "s3_aws_secret_access_key": "very-secret"}
DDB_KEYS = {"dynamodb_aws_access_key_id": "AKIAEXAMPLE", "dynamodb_aws_secret_access_key": "very-secret"}


@pytest.mark.parametrize(("values", "message"), [
    ({**KEYS}, "missing s3 callback var 's3_bucket_name'"),
    ({**KEYS, "s3_bucket_name": "logs", "s3_bukcet": "x"}, "unknown s3 callback var 's3_bukcet'"),
    ({**KEYS, "s3_bucket_name": "Logs_Bucket"}, "var 's3_bucket_name' must be a bucket name"),
    ({**KEYS, "s3_bucket_name": "logs", "s3_batch": "parquet"}, "var 's3_batch' must be one of object, ndjson"),
    ({"s3_bucket_name": "logs", "s3_aws_access_key_id": "AKIA"}, "missing var 's3_aws_secret_access_key'"),
    ({"s3_bucket_name": "logs"}, "missing var 's3_aws_access_key_id': a team destination gives its own AWS keys"),
    ({**KEYS, "s3_bucket_name": "logs", "s3_endpoint_url": "ftp://x"}, "s3_endpoint_url must be an http"),
    ({**KEYS, "s3_bucket_name": "logs", "s3_path": "a/../b"}, "var 's3_path' must not contain"),
])
def test_s3_team_vars_are_checked_and_each_error_names_the_var(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        S3Config.from_vars(values)


def test_s3_team_vars_become_a_config_whose_repr_hides_the_secret() -> None:
    config = S3Config.from_vars({**KEYS, "s3_bucket_name": "logs", "s3_path": "/litellm/logs/",
                                 "s3_endpoint_url": "HTTP://Minio.Local:9000/", "s3_region_name": "eu-west-1",
                                 "s3_aws_session_token": "token-xyz", "s3_batch": "ndjson"})
    assert config == S3Config("logs", AwsAccess("eu-west-1", "http://minio.local:9000", "AKIAEXAMPLE",
                                                "very-secret", "token-xyz"), "litellm/logs", "ndjson")
    assert "very-secret" not in repr(config) and "token-xyz" not in repr(config)


def test_only_the_gateway_wide_form_may_use_the_credential_chain() -> None:
    config = S3Config.from_vars(GatewayVars({"s3_bucket_name": "logs"}))
    assert config.access == AwsAccess() and not config.access.explicit_keys
    with pytest.raises(ValueError, match="dynamodb_aws_access_key_id"):
        DynamoDBConfig.from_vars({"dynamodb_table_name": "calls"})


@pytest.mark.parametrize(("values", "message"), [
    ({**DDB_KEYS}, "missing dynamodb callback var 'dynamodb_table_name'"),
    ({**DDB_KEYS, "dynamodb_table_name": "t"}, "var 'dynamodb_table_name' must be a table name"),
    ({**DDB_KEYS, "dynamodb_table_name": "calls", "aws_region_name": "x"}, "unknown dynamodb callback var"),
])
def test_dynamodb_team_vars_are_checked(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DynamoDBConfig.from_vars(values)


def specs(litellm: dict, env: dict[str, str], tmp_path: Path) -> dict:
    config = parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m"}}],
                           "litellm_settings": litellm}, environ=env)
    assert not config.warnings  # s3_callback_params and dynamodb_table_name are destinations' keys
    with httpx.Client() as client:
        ctx = BuildContext(http_client=client, span_log_path=tmp_path / "s.jsonl", console=io.StringIO())
        return {s.name: s.config for s in global_specs(config, builtin_registry(), env, ctx)}


def test_gateway_wide_forms_read_their_settings_and_the_aws_environment(tmp_path: Path) -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "env-secret", "AWS_REGION_NAME": "us-west-2",
           "AWS_REGION": "ignored-1", "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000", "BUCKET": "logs-bucket"}
    got = specs({"success_callback": ["s3", "dynamodb"], "dynamodb_table_name": "calls",
                 "s3_callback_params": {"s3_bucket_name": "os.environ/BUCKET", "s3_region_name": "eu-west-1",
                                        "s3_path": "litellm"}}, env, tmp_path)
    assert got == {
        "s3": S3Config("logs-bucket", AwsAccess("eu-west-1", None, "AKIAENV", "env-secret"), "litellm"),
        "dynamodb": DynamoDBConfig("calls", AwsAccess("us-west-2", "http://127.0.0.1:8000", "AKIAENV", "env-secret")),
    }
    # Nothing in the environment: boto3's own chain (profile, instance role) will decide.
    assert specs({"success_callback": ["dynamodb"], "dynamodb_table_name": "calls"}, {}, tmp_path) == {
        "dynamodb": DynamoDBConfig("calls", AwsAccess())}


def client_error(code: str, status: int, headers: dict[str, str] | None = None) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": "m"},
                                            "ResponseMetadata": {"HTTPStatusCode": status,
                                                                 "HTTPHeaders": headers or {}}}, "PutObject")


@pytest.mark.parametrize(("exc", "retryable", "too_large"), [
    (client_error("SlowDown", 503, {"retry-after": "7"}), True, False),
    (client_error("ThrottlingException", 400), True, False),
    (client_error("ProvisionedThroughputExceededException", 400), True, False),
    (client_error("RequestLimitExceeded", 400), True, False),
    (client_error("AccessDenied", 403), False, False),
    (client_error("NoSuchBucket", 404), False, False),
    (client_error("ResourceNotFoundException", 400), False, False),
    (client_error("ValidationException", 400), False, False),
    (client_error("EntityTooLarge", 400), True, True),
    (client_error("SomethingNew", 500), True, False),
    (client_error("SomethingElse", 400), False, False),
    (botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), True, False),
    (botocore.exceptions.ConnectionClosedError(endpoint_url="http://127.0.0.1:9"), True, False),
    (botocore.exceptions.NoRegionError(), False, False),
])
def test_botocore_errors_map_onto_the_delivery_contract(exc: Exception, retryable: bool, too_large: bool) -> None:
    failure = failure_from_aws(exc)
    assert isinstance(failure, ExportFailure)
    assert (failure.retryable, failure.too_large) == (retryable, too_large)
    assert failure.reason


def test_retry_after_and_the_status_are_kept() -> None:
    failure = failure_from_aws(client_error("SlowDown", 503, {"retry-after": "7"}))
    assert (failure.status, failure.retry_after, failure.reason) == (503, 7.0, "AWS SlowDown")


def test_default_team_settings_take_the_same_vars_and_still_need_the_teams_own_keys() -> None:
    entry = {"team_id": "t", "success_callback": ["s3", "dynamodb"], "s3_bucket_name": "team-logs",
             "s3_aws_access_key_id": "os.environ/K", "s3_aws_secret_access_key": "os.environ/S",
             "dynamodb_table_name": "calls", "dynamodb_aws_access_key_id": "os.environ/K",
             "dynamodb_aws_secret_access_key": "os.environ/S", "dynamodb_region_name": "eu-west-1"}
    config = parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m"}}],
                           "litellm_settings": {"default_team_settings": [entry]}}, environ={"K": "AKIA1", "S": "s1"})
    [team] = config.default_team_settings
    got = {s.name: s.config for s in config_team_specs(team, builtin_registry())}
    keys = AwsAccess(None, None, "AKIA1", "s1")
    assert got == {"s3": S3Config("team-logs", keys),
                   "dynamodb": DynamoDBConfig("calls", AwsAccess("eu-west-1", None, "AKIA1", "s1"))}
    del entry["s3_aws_access_key_id"], entry["s3_aws_secret_access_key"]
    config = parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m"}}],
                           "litellm_settings": {"default_team_settings": [entry]}}, environ={"K": "AKIA1", "S": "s1"})
    with pytest.raises(ValueError, match="s3: missing var 's3_aws_access_key_id'"):
        config_team_specs(config.default_team_settings[0], builtin_registry())
