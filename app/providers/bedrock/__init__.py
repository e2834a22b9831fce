"""``bedrock/<modelId>``: AWS Bedrock's Converse and ConverseStream APIs, SigV4-signed.

``request`` builds the Converse body, ``answer`` reads answers and errors, ``stream`` the event
stream, ``auth`` loads credentials and signs. ``BedrockDeployment`` is the shared
``NativeDeployment`` that first makes sure the credentials are loaded (off the loop), and reads the
exception name Bedrock puts in the ``x-amzn-ErrorType`` header.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
from botocore.utils import percent_encode

from app.calls.operations import Operation
from app.config.providers.bedrock import BedrockParams
from app.config.settings import DeploymentConfig
from app.providers.base import UpstreamReply
from app.providers.bedrock.answer import chat_answer, error_json
from app.providers.bedrock.auth import BedrockAuth
from app.providers.bedrock.request import converse_body, encode
from app.providers.bedrock.stream import ConverseStreamTranslator
from app.providers.native import NativeDeployment, NativeRequest, Resources, TranslatedStream
from contracts import semconv as sc

EVENT_STREAM = "application/vnd.amazon.eventstream"


class BedrockDialect:
    provider_name = sc.PROVIDER_AWS_BEDROCK
    operations = frozenset({Operation.CHAT})

    def __init__(self, config: DeploymentConfig, auth: BedrockAuth) -> None:
        self._model = config.upstream_model
        # The model id is one path label: botocore encodes it whole (":" -> %3A, "/" of an ARN -> %2F),
        # and SigV4 signs that path as the service computes it.
        base = f"{config.api_base}/model/{percent_encode(config.upstream_model)}"
        self._urls = {False: f"{base}/converse", True: f"{base}/converse-stream"}
        self._extra_headers = dict(config.headers)
        self._auth = auth

    def request(self, operation: Operation, payload: dict[str, Any], stream: bool) -> NativeRequest:
        body = converse_body(payload)
        raw = encode(body)
        accept = EVENT_STREAM if stream else "application/json"
        headers = {**self._extra_headers, "content-type": "application/json", "accept": accept}
        url = self._urls[stream]
        return NativeRequest(url, self._auth.headers(url, raw, headers), raw, body)

    def answer(self, operation: Operation, body: bytes, payload: dict[str, Any]) -> bytes:
        return chat_answer(body, self._model)

    def error(self, status: int, body: bytes, error_type: str | None = None) -> bytes:
        return error_json(status, body, error_type)

    def stream(self, operation: Operation, payload: dict[str, Any]) -> ConverseStreamTranslator:
        options = payload.get("stream_options")
        return ConverseStreamTranslator(self._model, isinstance(options, dict) and bool(options.get("include_usage")))


class BedrockDeployment(NativeDeployment):
    dialect: BedrockDialect

    def __init__(self, config: DeploymentConfig, resources: Resources, auth: BedrockAuth) -> None:
        super().__init__(config, BedrockDialect(config, auth), resources)
        self._auth = auth
        self._static_secrets = config.secrets

    async def _ready(self) -> None:
        await self._auth.refresh()
        secrets = self._static_secrets + self._auth.secrets()
        if secrets != self.config.secrets:  # loaded credentials are scrubbed like configured ones
            self.config = dataclasses.replace(self.config, secrets=secrets)

    async def complete(self, operation: str, payload: dict[str, Any]) -> UpstreamReply:
        await self._ready()
        return await super().complete(operation, payload)

    async def stream(self, operation: str, payload: dict[str, Any]) -> TranslatedStream:
        await self._ready()
        return await super().stream(operation, payload)

    def error_body(self, response: httpx.Response, body: bytes) -> bytes:
        return self.dialect.error(response.status_code, body, response.headers.get("x-amzn-errortype"))


def build(config: DeploymentConfig, resources: Resources) -> BedrockDeployment:
    params = config.params
    assert isinstance(params, BedrockParams)  # the reader in app.config.providers.bedrock made it
    auth = BedrockAuth(params, f"model {config.model_name!r} (bedrock/{config.upstream_model})")
    return BedrockDeployment(config, resources, auth)
