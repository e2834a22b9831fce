"""What the S3 and DynamoDB destinations share: AWS access settings, one client per destination,
and botocore's errors mapped onto ``contracts.failures.ExportFailure``.

Clients are made lazily, on the delivery thread that first exports: building one costs 70-140 ms of
CPU (botocore loads the service model), and destinations are built when the routing table is,
which happens on the event loop. Each client gets its own ``boto3.session.Session``: sessions are
not thread-safe and the default session is process-wide state.

botocore's own retries are off (one attempt): the delivery layer retries with backoff and keeps the
spans in its spool meanwhile, and a retry loop inside ``export`` would hold the destination's lane.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import boto3
import botocore.config
import botocore.exceptions

from contracts.failures import EXCERPT, ExportFailure, failure_from_status, parse_retry_after, unrecognised
from exporters.transport.urlpolicy import normalize_base_url

__all__ = ["AwsAccess", "LazyClient", "failure_from_aws", "make_client"]

_MASK = "****"
# ClientError codes that mean "slow down" or a passing fault on the service's side.
_RETRYABLE_CODES: Final = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestThrottledException", "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "RequestLimitExceeded", "InternalError", "InternalServerError", "ServiceUnavailable", "RequestTimeout",
    "RequestTimeoutException", "TransactionInProgressException",
})
# Codes that no retry can fix: the destination's settings or credentials are wrong.
_PERMANENT_CODES: Final = frozenset({
    "AccessDenied", "AccessDeniedException", "NoSuchBucket", "ResourceNotFoundException", "ValidationException",
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "UnrecognizedClientException", "InvalidBucketName",
    "AuthorizationHeaderMalformed", "PermanentRedirect", "ItemCollectionSizeLimitExceededException",
})
_TOO_LARGE_CODES: Final = frozenset({"EntityTooLarge", "RequestEntityTooLarge"})


@dataclass(frozen=True, slots=True)
class AwsAccess:
    """Region, endpoint and credentials of one destination. No keys: boto3's credential chain
    (environment, profile, instance role) decides, as it would for the AWS CLI."""

    region_name: str | None = None
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None

    def __repr__(self) -> str:  # the secret and the session token never appear in logs
        secret = None if self.secret_access_key is None else _MASK
        token = None if self.session_token is None else _MASK
        return (f"AwsAccess(region_name={self.region_name!r}, endpoint_url={self.endpoint_url!r}, "
                f"access_key_id={self.access_key_id!r}, secret_access_key={secret!r}, session_token={token!r})")

    @property
    def explicit_keys(self) -> bool:
        return self.access_key_id is not None

    @classmethod
    def from_vars(cls, values: Mapping[str, Any], prefix: str, *, chain_allowed: bool) -> AwsAccess:
        """``<prefix>region_name``, ``<prefix>endpoint_url``, ``<prefix>aws_access_key_id``,
        ``<prefix>aws_secret_access_key``, ``<prefix>aws_session_token``; the keys go in pairs."""
        key_var, secret_var = f"{prefix}aws_access_key_id", f"{prefix}aws_secret_access_key"
        key, secret = _text(values, key_var), _text(values, secret_var)
        if (key is None) != (secret is None):
            missing = secret_var if secret is None else key_var
            raise ValueError(f"missing var {missing!r}: {key_var} and {secret_var} are given together")
        if key is None and not chain_allowed:
            # A team never borrows the gateway's own AWS identity: it could name any bucket or table
            # that identity can write to, or an endpoint that would receive its session token.
            raise ValueError(f"missing var {key_var!r}: a team destination gives its own AWS keys "
                             f"({key_var}, {secret_var})")
        endpoint_var = f"{prefix}endpoint_url"
        endpoint = values.get(endpoint_var)
        return cls(region_name=_text(values, f"{prefix}region_name"),
                   endpoint_url=None if endpoint in (None, "") else normalize_base_url(endpoint, endpoint_var),
                   access_key_id=key, secret_access_key=secret,
                   session_token=_text(values, f"{prefix}aws_session_token"))


def _text(values: Mapping[str, Any], var: str) -> str | None:
    value = values.get(var)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"var {var!r} must be a string, not {type(value).__name__}")
    text = value.strip()
    if not text or any(ch.isspace() or not ch.isprintable() for ch in text):
        raise ValueError(f"var {var!r} must be non-empty, without whitespace or control characters")
    return text


def make_client(service: str, access: AwsAccess) -> Any:
    """A boto3 client of its own session; one attempt per call (see the module docstring)."""
    session = boto3.session.Session(aws_access_key_id=access.access_key_id,
                                    aws_secret_access_key=access.secret_access_key,
                                    aws_session_token=access.session_token, region_name=access.region_name)
    options: dict[str, Any] = {"retries": {"total_max_attempts": 1, "mode": "standard"},
                               "connect_timeout": 5, "read_timeout": 15, "max_pool_connections": 8}
    if access.endpoint_url is not None:
        # S3-compatible stores (MinIO, Ceph, Backblaze) want path-style URLs, and many reject the
        # CRC checksums botocore adds by default since 1.36.
        options |= {"s3": {"addressing_style": "path"}, "request_checksum_calculation": "when_required",
                    "response_checksum_validation": "when_required"}
    return session.client(service, endpoint_url=access.endpoint_url, config=botocore.config.Config(**options))


class LazyClient:
    """The client, made on first use by the thread that exports; closed by ``close``."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._client: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            return self._client

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def failure_from_aws(exc: Exception) -> ExportFailure:
    """What a botocore exception means for the delivery layer (never raises)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return _client_error(exc)
    name = type(exc).__name__
    detail = f"{name}: {exc}"[:EXCERPT]
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return ExportFailure(retryable=True, detail=detail, reason="connection failed")
    if isinstance(exc, (botocore.exceptions.HTTPClientError, botocore.exceptions.ConnectionError)):
        return ExportFailure(retryable=True, detail=detail, reason="connection lost or timed out")
    if isinstance(exc, (botocore.exceptions.NoCredentialsError, botocore.exceptions.CredentialRetrievalError)):
        # An instance role or SSO cache may come back; the spans wait in the spool meanwhile.
        return ExportFailure(retryable=True, detail=detail, reason="no AWS credentials")
    if isinstance(exc, (botocore.exceptions.NoRegionError, botocore.exceptions.ParamValidationError,
                        botocore.exceptions.PartialCredentialsError)):
        return ExportFailure(retryable=False, detail=detail, reason=f"AWS settings ({name})")
    return unrecognised(exc)


def _client_error(exc: botocore.exceptions.ClientError) -> ExportFailure:
    error = exc.response.get("Error") or {}
    meta = exc.response.get("ResponseMetadata") or {}
    code = str(error.get("Code") or "")
    status = int(meta.get("HTTPStatusCode") or 0) or None
    retry_after = parse_retry_after((meta.get("HTTPHeaders") or {}).get("retry-after"))
    detail = f"{code}: {error.get('Message') or ''}"[:EXCERPT]
    reason = f"AWS {code}" if code else f"HTTP {status}"
    if code in _TOO_LARGE_CODES:
        return ExportFailure(retryable=True, detail=detail, status=status, too_large=True, reason=reason)
    if code in _RETRYABLE_CODES or code.startswith("Throttl"):
        return ExportFailure(retryable=True, detail=detail, status=status, retry_after=retry_after, reason=reason)
    if code in _PERMANENT_CODES:
        return ExportFailure(retryable=False, detail=detail, status=status, reason=reason)
    if status is not None:
        mapped = failure_from_status(status, detail)
        if mapped is not None:
            return ExportFailure(retryable=mapped.retryable, detail=detail, status=status, retry_after=retry_after,
                                 too_large=mapped.too_large, reason=reason)
    return unrecognised(exc)


class GatewayVars(dict[str, Any]):
    """Vars of the gateway-wide form (``global_vars``): the only form allowed to use boto3's credential
    chain. A team's ``callback_vars`` arrive as plain dicts from JSON and can never be one of these."""
