"""Typed settings of one DynamoDB table, from a team's ``callback_vars`` or the gateway-wide form
(``litellm_settings.dynamodb_table_name`` and the AWS environment). ``ValueError`` names the var."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from exporters.aws import AwsAccess, GatewayVars

__all__ = ["ALLOWED_VARS", "ENV_VARS", "SECRET_VARS", "DynamoDBConfig"]

TABLE_VAR: Final = "dynamodb_table_name"
ENDPOINT_VAR: Final = "dynamodb_endpoint_url"
ALLOWED_VARS: Final = (TABLE_VAR, "dynamodb_region_name", ENDPOINT_VAR, "dynamodb_aws_access_key_id",
                       "dynamodb_aws_secret_access_key", "dynamodb_aws_session_token")
SECRET_VARS: Final = frozenset({"dynamodb_aws_secret_access_key", "dynamodb_aws_session_token"})
# The gateway-wide form: the seed's AWS_REGION_NAME first, then the names boto3 itself reads.
ENV_VARS: Final = {
    "dynamodb_region_name": ("AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"),
    ENDPOINT_VAR: ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"),
    "dynamodb_aws_access_key_id": ("AWS_ACCESS_KEY_ID",),
    "dynamodb_aws_secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
    "dynamodb_aws_session_token": ("AWS_SESSION_TOKEN",),
}
_TABLE = re.compile(r"[A-Za-z0-9_.-]{3,255}")  # DynamoDB's rule for table names


@dataclass(frozen=True, slots=True)
class DynamoDBConfig:
    table: str
    access: AwsAccess

    @classmethod
    def from_vars(cls, values: Mapping[str, Any]) -> DynamoDBConfig:
        for name in values:
            if name not in ALLOWED_VARS:
                raise ValueError(f"unknown dynamodb callback var {name!r}; allowed: {', '.join(ALLOWED_VARS)}")
        table = values.get(TABLE_VAR)
        if not table:
            raise ValueError(f"missing dynamodb callback var {TABLE_VAR!r}")
        if not isinstance(table, str) or not _TABLE.fullmatch(table):
            raise ValueError(f"var {TABLE_VAR!r} must be a table name (3-255 of A-Z, a-z, 0-9, '_', '-', '.')")
        access = AwsAccess.from_vars(values, "dynamodb_", chain_allowed=isinstance(values, GatewayVars))
        return cls(table=table, access=access)


def env_vars(env: Mapping[str, str]) -> dict[str, str]:
    """The first set variable of each var's list."""
    out = {}
    for var, names in ENV_VARS.items():
        value = next((env[n] for n in names if env.get(n)), None)
        if value is not None:
            out[var] = value
    return out
