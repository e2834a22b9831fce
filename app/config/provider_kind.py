"""What kind of upstream a deployment is, as far as the gateway's code branches on it.

A deployment's ``provider`` stays the prefix of ``litellm_params.model`` (it names the provider in
spans and prices); the few places that behave differently per provider ask its ``kind`` instead of
comparing that prefix with a string.
"""

from __future__ import annotations

from enum import Enum


class ProviderKind(Enum):
    MOCK = "mock"  # answered in the process (app.providers.mock), never over the network
    AZURE = "azure"  # OpenAI's wire format under Azure's URL scheme and ``api-key`` header
    OPENAI = "openai"  # OpenAI's wire format as OpenAI serves it: OpenAI and every compatible host
    ANTHROPIC = "anthropic"  # Anthropic's Messages API
    GEMINI = "gemini"  # the Gemini API (Google AI Studio keys)
    VERTEX_AI = "vertex_ai"  # Google Cloud's Vertex AI: Gemini models, and Claude models on Vertex
    BEDROCK = "bedrock"  # AWS Bedrock's Converse API, SigV4-signed

    @property
    def native(self) -> bool:
        """Spoken in the provider's own API, translated from and to OpenAI's shapes."""
        return self not in (ProviderKind.MOCK, ProviderKind.AZURE, ProviderKind.OPENAI)

    @classmethod
    def of(cls, provider: str) -> ProviderKind:
        return _SPECIAL.get(provider, cls.OPENAI)


_SPECIAL = {"mock": ProviderKind.MOCK, "azure": ProviderKind.AZURE, "anthropic": ProviderKind.ANTHROPIC,
            "gemini": ProviderKind.GEMINI, "vertex_ai": ProviderKind.VERTEX_AI, "bedrock": ProviderKind.BEDROCK}
