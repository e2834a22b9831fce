"""``bedrock/<modelId>``: the Converse API of Bedrock's runtime endpoint in the deployment's region."""

from __future__ import annotations

from app.config.provider_kind import ProviderKind
from app.config.providers.base import NativeProvider, ParamsContext, ResolvedProvider

KEYS = frozenset({"aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_region_name",
                  "aws_role_name", "aws_session_name", "aws_bedrock_runtime_endpoint", "aws_profile_name"})


def read(ctx: ParamsContext) -> ResolvedProvider:
    raise NotImplementedError("bedrock params: built by the Bedrock provider")


PROVIDER = NativeProvider(ProviderKind.BEDROCK, KEYS, read)
