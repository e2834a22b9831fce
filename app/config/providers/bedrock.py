"""``bedrock/<modelId>``: the Converse API of Bedrock's runtime endpoint in the deployment's region.

Credentials, first that applies (LiteLLM's names): ``api_key`` (a Bedrock API key, sent as a bearer
token; or ``AWS_BEARER_TOKEN_BEDROCK``); ``aws_access_key_id`` + ``aws_secret_access_key`` (+
``aws_session_token``); ``aws_profile_name``; else botocore's default chain. ``aws_role_name`` (a role
ARN) is then assumed with STS from those credentials. Only the names are settled here: credentials
are loaded off the event loop by the provider, at the first call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from app.config.keys import ConfigError
from app.config.provider_kind import ProviderKind
from app.config.providers.base import NativeProvider, ParamsContext, ResolvedProvider, first_named, host_label
from app.config.values import as_opt_str

KEYS = frozenset({"aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_region_name",
                  "aws_role_name", "aws_session_name", "aws_bedrock_runtime_endpoint", "aws_profile_name",
                  "aws_sts_endpoint", "aws_external_id"})
DEFAULT_SESSION_NAME = "spangate"  # STS wants a session name; LiteLLM's configs do not always give one


@dataclass(frozen=True, slots=True)
class AssumeRole:
    role_arn: str
    session_name: str
    external_id: str | None = None
    sts_endpoint: str | None = None  # botocore's regional STS endpoint when None


@dataclass(frozen=True, slots=True)
class BedrockParams:
    region: str
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile_name: str | None = None
    assume_role: AssumeRole | None = None
    bearer_token: str | None = field(default=None, repr=False)  # a Bedrock API key: no SigV4 then


def read(ctx: ParamsContext) -> ResolvedProvider:
    region = _region(ctx)
    params = BedrockParams(region, *_static_keys(ctx), profile_name=_opt(ctx, "aws_profile_name"),
                           assume_role=_assume_role(ctx), bearer_token=_bearer(ctx))
    secrets = tuple(s for s in (params.secret_access_key, params.session_token) if s)
    return ResolvedProvider(_endpoint(ctx, region), params.bearer_token, params, secrets)


def _opt(ctx: ParamsContext, key: str) -> str | None:
    return as_opt_str(ctx.params.get(key), f"{ctx.where}.{key}") or None


def _region(ctx: ParamsContext) -> str:
    named, region = first_named(ctx, ("aws_region_name",), ("AWS_REGION", "AWS_DEFAULT_REGION"))
    if not region:
        raise ConfigError(f"{ctx.where}.aws_region_name: required for bedrock/ deployments (or AWS_REGION)")
    return host_label(region, named, "us-east-1")


def _static_keys(ctx: ParamsContext) -> tuple[str | None, str | None, str | None]:
    key_id, secret = _opt(ctx, "aws_access_key_id"), _opt(ctx, "aws_secret_access_key")
    if bool(key_id) != bool(secret):  # half a key pair would silently fall back to the default chain
        missing = "aws_secret_access_key" if key_id else "aws_access_key_id"
        raise ConfigError(f"{ctx.where}.{missing}: required with "
                          f"{'aws_access_key_id' if key_id else 'aws_secret_access_key'}")
    token = _opt(ctx, "aws_session_token")
    if token and not key_id:
        raise ConfigError(f"{ctx.where}.aws_session_token: needs aws_access_key_id and aws_secret_access_key")
    return key_id, secret, token


def _assume_role(ctx: ParamsContext) -> AssumeRole | None:
    role = _opt(ctx, "aws_role_name")
    if role is None:
        for key in ("aws_session_name", "aws_external_id", "aws_sts_endpoint"):
            if _opt(ctx, key):
                raise ConfigError(f"{ctx.where}.{key}: only used with aws_role_name (the role to assume)")
        return None
    sts = _opt(ctx, "aws_sts_endpoint")
    if sts:
        _check_url(sts, f"{ctx.where}.aws_sts_endpoint")
    return AssumeRole(role, _opt(ctx, "aws_session_name") or DEFAULT_SESSION_NAME, _opt(ctx, "aws_external_id"), sts)


def _bearer(ctx: ParamsContext) -> str | None:
    if ctx.api_key:
        return ctx.api_key
    has_aws_keys = any(_opt(ctx, k) for k in ("aws_access_key_id", "aws_profile_name", "aws_role_name"))
    return None if has_aws_keys else ctx.env.get("AWS_BEARER_TOKEN_BEDROCK") or None


def _endpoint(ctx: ParamsContext, region: str) -> str:
    for key, given in (("aws_bedrock_runtime_endpoint", _opt(ctx, "aws_bedrock_runtime_endpoint")),
                       ("api_base", ctx.api_base)):
        if given:
            _check_url(given, f"{ctx.where}.{key}")
            return given.rstrip("/")
    return f"https://bedrock-runtime.{region}.amazonaws.com"


def _check_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: expected an http(s) URL, got {url[:80]!r}")


PROVIDER = NativeProvider(ProviderKind.BEDROCK, KEYS, read)
