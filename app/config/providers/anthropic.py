"""``anthropic/<model>``: the Messages API at ``api_base`` or Anthropic's own host."""

from __future__ import annotations

from app.config.provider_kind import ProviderKind
from app.config.providers.base import NativeProvider, ParamsContext, ResolvedProvider, key_from

DEFAULT_BASE = "https://api.anthropic.com"


def read(ctx: ParamsContext) -> ResolvedProvider:
    return ResolvedProvider((ctx.api_base or DEFAULT_BASE).rstrip("/"), key_from(ctx, "ANTHROPIC_API_KEY"))


PROVIDER = NativeProvider(ProviderKind.ANTHROPIC, frozenset(), read)
