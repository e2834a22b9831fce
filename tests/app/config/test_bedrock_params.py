"""``bedrock/`` entries' ``litellm_params``: region, endpoint and credentials named at start-up."""

from __future__ import annotations

from typing import Any

import pytest

from app.config.keys import ConfigError
from app.config.providers.bedrock import AssumeRole, BedrockParams
from app.config.settings import DeploymentConfig, parse_config

MODEL = "bedrock/anthropic.claude-3-5-haiku-20241022-v1:0"


def one(env: dict[str, str] | None = None, **params: Any) -> DeploymentConfig:
    raw = {"model_list": [{"model_name": "m", "litellm_params": {"model": MODEL, **params}}]}
    return parse_config(raw, environ=env or {}).deployments[0]


def test_the_regions_own_host_is_the_default_and_static_keys_are_secrets() -> None:
    d = one(aws_region_name="eu-west-3", aws_access_key_id="AKIA1", aws_secret_access_key="s3cret",
            aws_session_token="tok", temperature=0.1)
    assert d.api_base == "https://bedrock-runtime.eu-west-3.amazonaws.com"
    assert d.params == BedrockParams("eu-west-3", "AKIA1", "s3cret", "tok")
    assert d.secrets == ("s3cret", "tok") and d.api_key is None
    assert dict(d.default_params) == {"temperature": 0.1}  # aws_* keys are not request params
    assert d.upstream_model == "anthropic.claude-3-5-haiku-20241022-v1:0"


def test_the_region_comes_from_aws_region_then_aws_default_region() -> None:
    assert one({"AWS_REGION": "us-east-2", "AWS_DEFAULT_REGION": "x"}).params.region == "us-east-2"
    assert one({"AWS_DEFAULT_REGION": "ap-south-1"}).params.region == "ap-south-1"


def test_a_missing_region_stops_start_up_in_one_line_naming_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        one()
    assert str(caught.value) == ("model_list[0].litellm_params.aws_region_name: required for bedrock/ deployments "
                                 "(or AWS_REGION)")


def test_the_runtime_endpoint_wins_over_api_base() -> None:
    d = one(aws_region_name="us-east-1", aws_bedrock_runtime_endpoint="https://vpce-1.bedrock.example/",
            api_base="https://other.example")
    assert d.api_base == "https://vpce-1.bedrock.example"
    assert one(aws_region_name="us-east-1", api_base="http://127.0.0.1:9/").api_base == "http://127.0.0.1:9"
    with pytest.raises(ConfigError, match=r"aws_bedrock_runtime_endpoint: expected an http\(s\) URL"):
        one(aws_region_name="us-east-1", aws_bedrock_runtime_endpoint="bedrock.example")


@pytest.mark.parametrize(("params", "message"), [
    ({"aws_access_key_id": "AKIA1"}, "aws_secret_access_key: required with aws_access_key_id"),
    ({"aws_secret_access_key": "s"}, "aws_access_key_id: required with aws_secret_access_key"),
    ({"aws_session_token": "t"}, "aws_session_token: needs aws_access_key_id and aws_secret_access_key"),
    ({"aws_session_name": "s"}, "aws_session_name: only used with aws_role_name (the role to assume)")])
def test_incomplete_credentials_are_refused_rather_than_falling_back_to_the_chain(params: dict[str, str],
                                                                                  message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        one(aws_region_name="us-east-1", **params)
    assert str(caught.value) == f"model_list[0].litellm_params.{message}"


def test_a_role_to_assume_with_its_session_and_sts_endpoint() -> None:
    d = one(aws_region_name="us-east-1", aws_role_name="arn:aws:iam::1:role/r", aws_session_name="s1",
            aws_sts_endpoint="http://127.0.0.1:5000", aws_external_id="ext")
    assert d.params.assume_role == AssumeRole("arn:aws:iam::1:role/r", "s1", "ext", "http://127.0.0.1:5000")
    assert one(aws_region_name="us-east-1", aws_role_name="arn:aws:iam::1:role/r").params.assume_role.session_name \
        == "spangate"


def test_a_bedrock_api_key_from_api_key_or_its_variable_unless_aws_keys_are_given() -> None:
    assert one(aws_region_name="us-east-1", api_key="bk-1").params.bearer_token == "bk-1"
    env = {"AWS_BEARER_TOKEN_BEDROCK": "bk-env"}
    assert one(env, aws_region_name="us-east-1").api_key == "bk-env"
    assert one(env, aws_region_name="us-east-1", aws_profile_name="p").params.bearer_token is None


def test_no_credentials_given_leaves_them_to_the_default_chain() -> None:
    params = one(aws_region_name="us-east-1").params
    assert (params.access_key_id, params.profile_name, params.assume_role, params.bearer_token) == (None,) * 4


def test_bedrock_keys_are_no_misspelling_warning() -> None:
    raw = {"model_list": [{"model_name": "m", "litellm_params": {
        "model": MODEL, "aws_region_name": "us-east-1", "aws_sts_endpoint": "https://sts.example",
        "aws_role_name": "arn:aws:iam::1:role/r"}}]}
    assert parse_config(raw, environ={}).warnings == ()


@pytest.mark.parametrize(("env", "params", "named"), [
    ({}, {"aws_region_name": "evil.example/"}, "model_list[0].litellm_params.aws_region_name"),
    ({"AWS_REGION": "us-east-1.evil.example#"}, {}, "AWS_REGION"),
    ({"AWS_DEFAULT_REGION": "US-EAST-1"}, {}, "AWS_DEFAULT_REGION"),
    ({}, {"aws_region_name": "us-east-1\n"}, "model_list[0].litellm_params.aws_region_name")])
def test_a_region_that_is_not_a_hostname_label_stops_start_up_naming_where_it_came_from(
        env: dict[str, str], params: dict[str, str], named: str) -> None:
    """The region goes into bedrock-runtime.<region>.amazonaws.com: 'evil.example/' sent calls elsewhere."""
    with pytest.raises(ConfigError) as caught:
        one(env, **params)
    assert str(caught.value).startswith(f"{named}: ") and "\n" not in str(caught.value)
    assert "lower-case letters, digits and '-'" in str(caught.value)
