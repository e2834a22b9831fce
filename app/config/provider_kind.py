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

    @classmethod
    def of(cls, provider: str) -> ProviderKind:
        return _SPECIAL.get(provider, cls.OPENAI)


_SPECIAL = {"mock": ProviderKind.MOCK, "azure": ProviderKind.AZURE}
