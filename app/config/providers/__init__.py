"""Providers spoken in their own API (Anthropic, Gemini, Vertex AI, Bedrock): their ``litellm_params``.

Each provider module here declares the keys it reads and a reader that turns them into typed,
frozen params, checked at start-up with one-line errors naming the key; the provider's deployment
(``app.providers.<name>``) reads nothing else. A reader also settles where the calls go (the
effective base URL, so ``/health`` and spans know the host) and which key, after its environment
variable (``ANTHROPIC_API_KEY``...), so nothing is resolved on the request path.
"""

from __future__ import annotations

from app.config.provider_kind import ProviderKind
from app.config.providers import anthropic, bedrock, google
from app.config.providers.base import NativeProvider, ParamsContext, ResolvedProvider

NATIVE: dict[ProviderKind, NativeProvider] = {
    p.kind: p for p in (anthropic.PROVIDER, google.GEMINI, google.VERTEX_AI, bedrock.PROVIDER)}
NATIVE_KEYS = frozenset().union(*(p.keys for p in NATIVE.values()))  # known to the misspelling check

__all__ = ["NATIVE", "NATIVE_KEYS", "NativeProvider", "ParamsContext", "ResolvedProvider"]
