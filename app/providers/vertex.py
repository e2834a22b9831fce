"""``vertex_ai/<gemini model>``: Gemini on Google Cloud's Vertex AI, in the Gemini dialect, under
Vertex's URL scheme and with an OAuth access token from google-auth.

The token comes from google-auth's own flows (a service account's signed JWT exchanged at the
``token_uri`` its credentials name; or the default credentials), refreshed through google-auth's
transport in a thread, off the event loop, when it is missing or about to expire
(``Credentials.valid`` allows for google-auth's refresh margin), and by one call at a time: the
calls waiting for it share the one refresh.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import google.auth
import google.auth.exceptions
import google.auth.transport.requests
from google.auth.credentials import Credentials
from google.oauth2 import service_account

from app.calls.operations import Operation
from app.config.keys import ConfigError
from app.config.providers.google import VertexParams
from app.config.settings import DeploymentConfig
from app.errors import UpstreamUnavailable
from app.providers.base import UpstreamReply
from app.providers.gemini import GeminiDialect
from app.providers.native import NativeDeployment, Resources, TranslatedStream
from contracts import semconv as sc

log = logging.getLogger(__name__)
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
TOKEN_TIMEOUT = 30.0  # seconds for one token exchange; google-auth's own default is 120


class TokenSource:
    """One deployment's access token, refreshed single-flight off the event loop."""

    def __init__(self, credentials: Credentials, timeout: float = TOKEN_TIMEOUT) -> None:
        self._credentials = credentials
        self._request = _TimedRequest(timeout)
        self._lock = asyncio.Lock()

    @property
    def token(self) -> str:
        return str(self._credentials.token or "")

    @property
    def quota_project(self) -> str | None:
        return getattr(self._credentials, "quota_project_id", None)

    async def ensure(self) -> None:
        if self._credentials.valid:
            return
        async with self._lock:
            if not self._credentials.valid:  # a call that waited finds the token the first one got
                await asyncio.to_thread(self._credentials.refresh, self._request)


class _TimedRequest(google.auth.transport.requests.Request):
    """google-auth's requests transport with a timeout of ours when the caller sets none."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
                 timeout: Any = None, **kwargs: Any) -> Any:
        return super().__call__(url, method=method, body=body, headers=headers,
                                timeout=timeout or self._timeout, **kwargs)


class VertexRoute:
    """``{base}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{method}``."""

    def __init__(self, base: str, params: VertexParams, model: str, tokens: TokenSource) -> None:
        path = (f"projects/{params.project}/locations/{params.location}/publishers/{params.publisher}"
                f"/models/{model}")
        self._prefix = f"{base}/v1/{quote(path, safe='/-._~@')}"
        self._tokens = tokens

    def url(self, method: str) -> str:
        return f"{self._prefix}:{method}"

    def headers(self) -> Mapping[str, str]:
        headers = {"authorization": f"Bearer {self._tokens.token}", "content-type": "application/json"}
        if self._tokens.quota_project:  # user credentials bill the project they name, as google-auth sends it
            headers["x-goog-user-project"] = self._tokens.quota_project
        return headers


class VertexDeployment(NativeDeployment):
    """A native deployment that makes sure of its token before each call."""

    def __init__(self, config: DeploymentConfig, dialect: GeminiDialect, resources: Resources,
                 tokens: TokenSource) -> None:
        super().__init__(config, dialect, resources)
        self._tokens = tokens

    async def complete(self, operation: str, payload: dict[str, Any]) -> UpstreamReply:
        await self._token()
        return await super().complete(operation, payload)

    async def stream(self, operation: str, payload: dict[str, Any]) -> TranslatedStream:
        await self._token()
        return await super().stream(operation, payload)

    async def _token(self) -> None:
        try:
            await self._tokens.ensure()
        except (google.auth.exceptions.GoogleAuthError, OSError) as exc:
            # The token endpoint's answer names the problem (invalid_grant...), never the key: logged for
            # the operator; the client is told which deployment could not be authorised.
            log.warning("no Vertex AI access token for %s: %s", self.where, exc)
            raise UpstreamUnavailable(f"could not get a Google access token for {self.where}: "
                                      f"{type(exc).__name__}") from None


def credentials_of(params: VertexParams, where: str) -> Credentials:
    info = params.credentials
    try:
        if info is None:
            credentials, _ = google.auth.default(scopes=list(SCOPES))
        elif info.get("type", "service_account") == "service_account":
            credentials = service_account.Credentials.from_service_account_info(dict(info), scopes=list(SCOPES))
        else:  # authorized_user, external_account...: google-auth tells them apart
            credentials, _ = google.auth.load_credentials_from_dict(dict(info), scopes=list(SCOPES))
    except (google.auth.exceptions.GoogleAuthError, ValueError) as exc:
        # ValueError: a private key that is not one; its text is not shown.
        raise ConfigError(f"{where}.vertex_credentials: not usable ({type(exc).__name__})") from None
    return credentials


def build(config: DeploymentConfig, resources: Resources) -> NativeDeployment:
    params: VertexParams = config.params
    tokens = TokenSource(credentials_of(params, f"model {config.model_name!r}"),
                         min(config.timeout, TOKEN_TIMEOUT))
    route = VertexRoute(config.api_base or "", params, config.upstream_model, tokens)
    dialect = GeminiDialect(config.upstream_model, route, sc.PROVIDER_GCP_VERTEX_AI, frozenset({Operation.CHAT}))
    return VertexDeployment(config, dialect, resources, tokens)
