"""``gemini/<model>``: the Gemini API (``generateContent``, ``streamGenerateContent?alt=sse``,
``batchEmbedContents``) spoken for OpenAI's chat completions and embeddings.

The translation (``request``, ``answer``, ``stream``) is pure and shared with Vertex AI
(``app.providers.vertex``), which differs only in where the calls go and how they are authorised:
a ``Route``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote

import msgspec

from app.calls.operations import Operation
from app.config.settings import DeploymentConfig
from app.providers.gemini.answer import chat_answer, embeddings_answer, error_body
from app.providers.gemini.request import chat_body, embed_body
from app.providers.gemini.stream import GeminiStream
from app.providers.native import NativeDeployment, NativeRequest, Resources
from contracts import semconv as sc

_encode = msgspec.json.encode


class Route(Protocol):
    def url(self, method: str) -> str:
        """Where ``method`` (``generateContent``, ``streamGenerateContent?alt=sse``...) of the model is."""

    def headers(self) -> Mapping[str, str]: ...


class GeminiRoute:
    """The Gemini API: ``{base}/v1beta/models/{model}:{method}``, the key in ``x-goog-api-key``
    (never in the URL's ``?key=``, where logs and proxies would see it)."""

    def __init__(self, base: str, model: str, key: str) -> None:
        # Tuned models are named with their collection (tunedModels/x); base models are under models/.
        path = model if "/" in model else f"models/{model}"
        self._prefix = f"{base}/v1beta/{quote(path, safe='/-._~')}"
        self._headers = {"x-goog-api-key": key, "content-type": "application/json"}

    def url(self, method: str) -> str:
        return f"{self._prefix}:{method}"

    def headers(self) -> Mapping[str, str]:
        return self._headers


class GeminiDialect:
    def __init__(self, model: str, route: Route, provider_name: str = sc.PROVIDER_GCP_GEMINI,
                 operations: frozenset[Operation] = frozenset({Operation.CHAT, Operation.EMBEDDINGS})) -> None:
        self.provider_name = provider_name
        self.operations = operations
        self._model = model
        self._route = route

    def request(self, operation: Operation, payload: dict[str, Any], stream: bool) -> NativeRequest:
        if operation is Operation.EMBEDDINGS:
            body, method = embed_body(payload, self._model), "batchEmbedContents"
        else:
            body = chat_body(payload)
            method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return NativeRequest(self._route.url(method), self._route.headers(), _encode(body), body)

    def answer(self, operation: Operation, body: bytes, payload: dict[str, Any]) -> bytes:
        if operation is Operation.EMBEDDINGS:
            return embeddings_answer(body, self._model, payload)
        return chat_answer(body, self._model)

    def error(self, status: int, body: bytes) -> bytes:
        return error_body(status, body)

    def stream(self, operation: Operation, payload: dict[str, Any]) -> GeminiStream:
        options = payload.get("stream_options")
        return GeminiStream(self._model, isinstance(options, dict) and bool(options.get("include_usage")))


def build(config: DeploymentConfig, resources: Resources) -> NativeDeployment:
    route = GeminiRoute(config.api_base or "", config.upstream_model, config.api_key or "")
    return NativeDeployment(config, GeminiDialect(config.upstream_model, route), resources)
