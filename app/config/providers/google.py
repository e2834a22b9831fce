"""``gemini/<model>`` (the Gemini API, keyed) and ``vertex_ai/<model>`` (Google Cloud, OAuth)."""

from __future__ import annotations

from app.config.provider_kind import ProviderKind
from app.config.providers.base import NativeProvider, ParamsContext, ResolvedProvider, key_from

GEMINI_BASE = "https://generativelanguage.googleapis.com"


def read_gemini(ctx: ParamsContext) -> ResolvedProvider:
    return ResolvedProvider((ctx.api_base or GEMINI_BASE).rstrip("/"), key_from(ctx, "GEMINI_API_KEY"))


def read_vertex(ctx: ParamsContext) -> ResolvedProvider:
    raise NotImplementedError("vertex_ai params: built by the Vertex AI provider")


GEMINI = NativeProvider(ProviderKind.GEMINI, frozenset(), read_gemini)
VERTEX_AI = NativeProvider(ProviderKind.VERTEX_AI, frozenset({"vertex_project", "vertex_location",
                                                               "vertex_credentials"}), read_vertex)
