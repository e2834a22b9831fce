"""``vertex_ai/<model>``: Google Cloud's Vertex AI, under Vertex's URL scheme and with an OAuth
access token from google-auth. Gemini models speak the Gemini dialect; Claude models
(``vertex_ai/claude-...``) speak Anthropic's Messages API through ``:rawPredict`` and
``:streamRawPredict``, with the model in the URL and ``anthropic_version`` in the body.

The token comes from google-auth's own flows (a service account's signed JWT exchanged at the
``token_uri`` its credentials name; or the default credentials), refreshed through google-auth's
transport in a thread, off the event loop, when it is missing or about to expire
(``Credentials.valid`` allows for google-auth's refresh margin), and by one call at a time: the
calls waiting for it share the one refresh. That exchange goes through ``upstream_proxy`` as the
model calls do (google-auth's requests session would otherwise read only HTTP(S)_PROXY).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import google.auth
import google.auth.exceptions
import google.auth.transport.requests
import msgspec
import requests
from google.auth.credentials import Credentials
from google.oauth2 import service_account

from app.calls.operations import Operation
from app.config.keys import ConfigError
from app.config.providers.anthropic import AnthropicParams
from app.config.providers.google import VertexParams
from app.config.settings import DeploymentConfig
from app.errors import UpstreamUnavailable
from app.providers.anthropic import AnthropicStream, answer_bytes, error_bytes, to_messages_body
from app.providers.base import UpstreamReply
from app.providers.gemini import GeminiDialect
from app.providers.gemini.answer import error_body
from app.providers.native import Dialect, NativeDeployment, NativeRequest, Resources, TranslatedStream
from contracts import semconv as sc

log = logging.getLogger(__name__)
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
TOKEN_TIMEOUT = 30.0  # seconds for one token exchange; google-auth's own default is 120
# What Anthropic's and Google's docs give for Claude on Vertex AI (in the body; there is no header).
ANTHROPIC_VERSION = "vertex-2023-10-16"
_encode = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()


class TokenSource:
    """One deployment's access token, refreshed single-flight off the event loop."""

    def __init__(self, credentials: Credentials, timeout: float = TOKEN_TIMEOUT,
                 upstream_proxy: str | None = None) -> None:
        self._credentials = credentials
        self._request = _TimedRequest(timeout, token_session(upstream_proxy))
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


def token_session(upstream_proxy: str | None) -> requests.Session:
    """The token exchange goes where the gateway's own calls go: through ``upstream_proxy`` when set,
    direct for ``"direct"``, else through HTTP(S)_PROXY as requests (like httpx) reads them. requests
    lets the environment's proxies win over a session's, so a set proxy turns the environment off."""
    session = requests.Session()
    if upstream_proxy:
        session.trust_env = False
        if upstream_proxy != "direct":
            session.proxies = {"http": upstream_proxy, "https": upstream_proxy}
    return session


class _TimedRequest(google.auth.transport.requests.Request):
    """google-auth's requests transport with a timeout of ours when the caller sets none."""

    def __init__(self, timeout: float, session: requests.Session | None = None) -> None:
        super().__init__(session)
        self._timeout = timeout

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
                 timeout: Any = None, **kwargs: Any) -> Any:
        return super().__call__(url, method=method, body=body, headers=headers,
                                timeout=timeout or self._timeout, **kwargs)


class VertexRoute:
    """``{base}/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}``;
    a Claude model's ``@`` version stays as it is (a path character; Anthropic's SDK sends it so)."""

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

    def __init__(self, config: DeploymentConfig, dialect: Dialect, resources: Resources,
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


class AnthropicVertexDialect:
    """Claude on Vertex AI: the Messages body without ``model``, with ``anthropic_version``; Anthropic's
    answers and events, read by the ``anthropic/`` translations as they are."""

    provider_name = sc.PROVIDER_GCP_VERTEX_AI
    operations = frozenset({Operation.CHAT})

    def __init__(self, model: str, params: AnthropicParams, route: VertexRoute,
                 headers: Mapping[str, str] | None = None) -> None:
        self._model = model
        self._params = params
        self._route = route
        self._headers = dict(headers or {})  # extra_headers (anthropic-beta...), after the route's own

    def request(self, operation: Operation, payload: dict[str, Any], stream: bool) -> NativeRequest:
        body = {"anthropic_version": ANTHROPIC_VERSION,
                **to_messages_body(payload, self._params.max_tokens, drop_params=self._params.drop_params)}
        if stream:
            body["stream"] = True
        url = self._route.url("streamRawPredict" if stream else "rawPredict")
        return NativeRequest(url, {**self._route.headers(), **self._headers}, _encode.encode(body), body)

    def answer(self, operation: Operation, body: bytes, payload: dict[str, Any]) -> bytes:
        return answer_bytes(body, int(time.time()))

    def error(self, status: int, body: bytes) -> bytes:
        """Vertex's own front (the token, quotas, a model not enabled) answers in Google's error shape;
        the model behind it in Anthropic's (``{"type": "error", "error": {...}}``)."""
        return error_bytes(status, body) if _anthropic_error(body) else error_body(status, body)

    def stream(self, operation: Operation, payload: dict[str, Any]) -> AnthropicStream:
        options = payload.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return AnthropicStream(int(time.time()), include_usage, self._model)


def _anthropic_error(body: bytes) -> bool:
    try:
        data = _decode.decode(body) if body else None
    except msgspec.DecodeError:
        return False
    return isinstance(data, dict) and data.get("type") == "error"


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
                         min(config.timeout, TOKEN_TIMEOUT), resources.upstream_proxy)
    route = VertexRoute(config.api_base or "", params, config.upstream_model, tokens)
    dialect: Dialect
    if params.anthropic is not None:
        dialect = AnthropicVertexDialect(config.upstream_model, params.anthropic, route, config.headers)
    else:
        dialect = GeminiDialect(config.upstream_model, route, sc.PROVIDER_GCP_VERTEX_AI, frozenset({Operation.CHAT}))
    return VertexDeployment(config, dialect, resources, tokens)
