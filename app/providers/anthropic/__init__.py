"""``anthropic/<model>``: OpenAI chat calls spoken in Anthropic's Messages API.

``request.py``, ``answer.py`` and ``stream.py`` are pure translations (no model in the body, no
URL, no key), which Anthropic-on-Vertex can reuse; this module adds what Anthropic's own host
wants: ``POST {api_base}/v1/messages`` with ``x-api-key`` and ``anthropic-version``.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from app.calls.operations import Operation
from app.config.providers.anthropic import AnthropicParams
from app.config.settings import DeploymentConfig
from app.providers.anthropic.answer import answer_bytes, error_bytes, to_chat_completion, to_usage
from app.providers.anthropic.request import to_messages_body
from app.providers.anthropic.stream import AnthropicStream
from app.providers.native import NativeDeployment, NativeRequest, Resources
from contracts import semconv as sc

# The version whose Messages API takes temperature and top_p (2026-10-21 refuses them, even at their
# defaults); an operator can name another in extra_headers.
API_VERSION = "2023-06-01"
_encode = msgspec.json.Encoder()

__all__ = ["AnthropicDialect", "AnthropicStream", "answer_bytes", "build", "error_bytes", "to_chat_completion",
           "to_messages_body", "to_usage"]


class AnthropicDialect:
    provider_name = sc.PROVIDER_ANTHROPIC
    operations = frozenset({Operation.CHAT})

    def __init__(self, config: DeploymentConfig) -> None:
        params = config.params if isinstance(config.params, AnthropicParams) else AnthropicParams(4096)
        self._params = params
        self._model = config.upstream_model
        self._url = f"{config.api_base}/v1/messages"
        self._headers = {"x-api-key": config.api_key or "", "anthropic-version": API_VERSION,
                         "content-type": "application/json", **config.headers}

    def request(self, operation: Operation, payload: dict[str, Any], stream: bool) -> NativeRequest:
        body = {"model": self._model,
                **to_messages_body(payload, self._params.max_tokens, drop_params=self._params.drop_params)}
        if stream:
            body["stream"] = True
        return NativeRequest(self._url, self._headers, _encode.encode(body), body)

    def answer(self, operation: Operation, body: bytes, payload: dict[str, Any]) -> bytes:
        return answer_bytes(body, int(time.time()))

    def error(self, status: int, body: bytes) -> bytes:
        return error_bytes(status, body)

    def stream(self, operation: Operation, payload: dict[str, Any]) -> AnthropicStream:
        options = payload.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return AnthropicStream(int(time.time()), include_usage, self._model)


def build(config: DeploymentConfig, resources: Resources) -> NativeDeployment:
    return NativeDeployment(config, AnthropicDialect(config), resources)
