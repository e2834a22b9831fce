"""Bedrock's credentials and SigV4 signatures, by botocore's own credential providers and signer.

Loading credentials can block for seconds (the default chain asks the instance metadata service,
STS AssumeRole is a network call), so it runs in a worker thread, once for many waiting calls, and
again only when botocore says the credentials are about to expire (its advisory window: 15 minutes
before the expiry). Signing itself is CPU only and runs on the loop with the frozen credentials.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import (
    Credentials,
    DeferredRefreshableCredentials,
    ReadOnlyCredentials,
    RefreshableCredentials,
)
from botocore.exceptions import ClientError

from app.config.providers.bedrock import AssumeRole, BedrockParams
from app.errors import UpstreamUnavailable

SIGNING_NAME = "bedrock"  # bedrock-runtime's signingName (botocore/data/bedrock-runtime/.../service-2.json)
SessionFactory = Callable[..., Any]  # botocore.session.Session(profile=...); tests give their own
# At DEBUG, botocore's signer logs the canonical request (the session token in it) and its parsers log
# response bodies (STS's secret keys): a gateway run with --debug would write credentials to its log.
_CREDENTIAL_LOGGERS = ("botocore.auth", "botocore.parsers", "botocore.endpoint")
for _name in _CREDENTIAL_LOGGERS:
    logging.getLogger(_name).addFilter(lambda record: record.levelno > logging.DEBUG)


class CredentialsUnavailable(UpstreamUnavailable):
    """No AWS credentials could be had (none in the chain, STS refused): a 502, so a group fails over."""


class BedrockAuth:
    def __init__(self, params: BedrockParams, where: str,
                 session_factory: SessionFactory = botocore.session.Session) -> None:
        self._params = params
        self._where = where
        self._session_factory = session_factory
        self._lock = asyncio.Lock()
        self._source: Credentials | None = None
        self._frozen: ReadOnlyCredentials | None = None
        if params.access_key_id and not params.assume_role:  # static: nothing to load, ever
            self._source = Credentials(params.access_key_id, params.secret_access_key, params.session_token)
            self._frozen = self._source.get_frozen_credentials()

    @property
    def bearer(self) -> bool:
        return self._params.bearer_token is not None

    def fresh(self) -> bool:
        if self.bearer:
            return True
        if self._frozen is None or self._source is None:
            return False
        return not (isinstance(self._source, RefreshableCredentials) and self._source.refresh_needed())

    async def refresh(self) -> None:
        """Credentials good for this call, loaded in a thread when missing or about to expire."""
        if self.fresh():
            return
        async with self._lock:  # one load for every call that waits for it
            if not self.fresh():
                self._frozen = await asyncio.to_thread(self._load)

    def secrets(self) -> tuple[str, ...]:
        """The loaded secret key and session token: scrubbed from errors like the configured ones."""
        frozen = self._frozen
        return tuple(s for s in (frozen.secret_key, frozen.token) if s) if frozen else ()

    def headers(self, url: str, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        """``headers`` with the authorization: SigV4 (X-Amz-Date, Authorization, X-Amz-Security-Token)."""
        if self._params.bearer_token is not None:
            return {**headers, "authorization": f"Bearer {self._params.bearer_token}"}
        if self._frozen is None:
            raise CredentialsUnavailable(f"{self._where}: AWS credentials were not loaded")
        request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
        SigV4Auth(self._frozen, SIGNING_NAME, self._params.region).add_auth(request)
        return dict(request.headers.items())

    # --- in the worker thread ----------------------------------------------------------------------

    def _load(self) -> ReadOnlyCredentials:
        try:
            if self._source is None:
                self._source = self._resolve()
            return self._source.get_frozen_credentials()
        except CredentialsUnavailable:
            raise
        except Exception as exc:  # any failure of botocore's (a parser error, an OSError from a profile
            # file...) means "no credentials"; the name only: botocore's texts can carry key ids.
            raise CredentialsUnavailable(f"{self._where}: AWS credentials unavailable ({_reason(exc)})") from None

    def _resolve(self) -> Credentials:
        base = self._base()
        role = self._params.assume_role
        if role is None:
            return base
        # Deferred: the first read fetches, later ones refresh in botocore's advisory window.
        return DeferredRefreshableCredentials(_role_fetcher(self._session_factory, base, role, self._params.region),
                                              "sts-assume-role")

    def _base(self) -> Credentials:
        p = self._params
        if p.access_key_id:
            return Credentials(p.access_key_id, p.secret_access_key, p.session_token)
        found = self._session_factory(profile=p.profile_name).get_credentials()
        if found is None:
            raise CredentialsUnavailable(f"{self._where}: no AWS credentials found (aws_access_key_id, "
                                         "aws_profile_name or the default chain: environment, config files, "
                                         "container or instance role)")
        return found


def _role_fetcher(session_factory: SessionFactory, base: Credentials, role: AssumeRole,
                  region: str) -> Callable[[], dict[str, Any]]:
    """STS AssumeRole with ``base``: the metadata botocore's RefreshableCredentials refreshes from."""
    def fetch() -> dict[str, Any]:
        keys = base.get_frozen_credentials()
        sts = session_factory().create_client(
            "sts", region_name=region, endpoint_url=role.sts_endpoint, aws_access_key_id=keys.access_key,
            aws_secret_access_key=keys.secret_key, aws_session_token=keys.token)
        extra = {"ExternalId": role.external_id} if role.external_id else {}
        got = sts.assume_role(RoleArn=role.role_arn, RoleSessionName=role.session_name, **extra)["Credentials"]
        return {"access_key": got["AccessKeyId"], "secret_key": got["SecretAccessKey"],
                "token": got["SessionToken"], "expiry_time": got["Expiration"].isoformat()}
    return fetch


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "ClientError")
    return type(exc).__name__
