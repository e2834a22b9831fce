"""Typed settings of one S3 archive, from a team's ``callback_vars`` or the gateway-wide form
(``litellm_settings.s3_callback_params`` over the AWS environment). ``ValueError`` names the var."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from exporters.aws import AwsAccess, GatewayVars

__all__ = ["ALLOWED_VARS", "ENV_VARS", "SECRET_VARS", "S3Config"]

BUCKET_VAR: Final = "s3_bucket_name"
PATH_VAR: Final = "s3_path"
BATCH_VAR: Final = "s3_batch"
ENDPOINT_VAR: Final = "s3_endpoint_url"
ALLOWED_VARS: Final = (BUCKET_VAR, PATH_VAR, BATCH_VAR, "s3_region_name", ENDPOINT_VAR, "s3_aws_access_key_id",
                       "s3_aws_secret_access_key", "s3_aws_session_token")
SECRET_VARS: Final = frozenset({"s3_aws_secret_access_key", "s3_aws_session_token"})
# The gateway-wide form also reads the AWS environment (the seed sets these in .env); the section's
# keys win. Without keys anywhere, boto3's credential chain decides.
ENV_VARS: Final = {
    "s3_region_name": "AWS_REGION_NAME", ENDPOINT_VAR: "AWS_ENDPOINT_URL_S3",
    "s3_aws_access_key_id": "AWS_ACCESS_KEY_ID", "s3_aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "s3_aws_session_token": "AWS_SESSION_TOKEN",
}
BATCH_MODES: Final = ("object", "ndjson")  # one JSON object per call (LiteLLM's layout) | per flush
# S3's rule for new buckets (3-63 of lowercase letters, digits, dots, hyphens); S3-compatible stores too.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True, slots=True)
class S3Config:
    bucket: str
    access: AwsAccess
    path: str = ""  # key prefix without slashes at either end; "" writes at the bucket's root
    batch: str = "object"

    @classmethod
    def from_vars(cls, values: Mapping[str, Any]) -> S3Config:
        for name in values:
            if name not in ALLOWED_VARS:
                raise ValueError(f"unknown s3 callback var {name!r}; allowed: {', '.join(ALLOWED_VARS)}")
        bucket = values.get(BUCKET_VAR)
        if not bucket:
            raise ValueError(f"missing s3 callback var {BUCKET_VAR!r}")
        if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket):
            raise ValueError(f"var {BUCKET_VAR!r} must be a bucket name (3-63 of a-z, 0-9, '.', '-')")
        batch = values.get(BATCH_VAR) or "object"
        if batch not in BATCH_MODES:
            raise ValueError(f"var {BATCH_VAR!r} must be one of {', '.join(BATCH_MODES)}, got {batch!r}")
        access = AwsAccess.from_vars(values, "s3_", chain_allowed=isinstance(values, GatewayVars))
        return cls(bucket=bucket, access=access, path=_path(values.get(PATH_VAR)), batch=batch)


def _path(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or any(not ch.isprintable() for ch in value) or "\\" in value:
        raise ValueError(f"var {PATH_VAR!r} must be a printable key prefix such as 'logs/litellm'")
    parts = [p for p in value.strip().split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise ValueError(f"var {PATH_VAR!r} must not contain '.' or '..' segments")
    return "/".join(parts)
