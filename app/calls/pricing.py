"""Cost in USD of one call, from the ``genai-prices`` tables or the deployment's ``model_info``.

``genai_prices.calc_price`` costs about 0.3 ms a call (it matches the model and builds Decimals),
too much for the request path, so the per-token prices of each (provider, model) pair are looked
up once and cached; the arithmetic per call is a few float operations.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from genai_prices import Usage, calc_price

from app.config.providers.hosts import PRICE_IDS

log = logging.getLogger(__name__)

# Our provider prefixes -> genai-prices provider ids (the OpenAI-compatible hosts' from their table).
_PROVIDER_IDS = {**PRICE_IDS, "anthropic": "anthropic", "gemini": "google", "vertex_ai": "google",
                 "bedrock": "aws"}
_MTOK = 1_000_000


@dataclass(frozen=True, slots=True)
class TokenPrices:
    """USD per token."""

    input: float
    output: float
    cache_read: float | None = None

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        cached = min(cached_tokens, input_tokens) if self.cache_read is not None else 0
        fresh = input_tokens - cached
        return fresh * self.input + cached * (self.cache_read or 0.0) + output_tokens * self.output


class PriceBook:
    """Caches one ``TokenPrices`` (or ``None``: unknown model) per (provider, model)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], TokenPrices | None] = {}

    def prices(self, provider: str, model: str, model_info: Mapping[str, Any]) -> TokenPrices | None:
        if "input_cost_per_token" in model_info or "output_cost_per_token" in model_info:
            return TokenPrices(float(model_info.get("input_cost_per_token", 0.0)),
                               float(model_info.get("output_cost_per_token", 0.0)))
        key = (provider, model)
        if key not in self._cache:
            self._cache[key] = _lookup(provider, model)
        return self._cache[key]

    def cost(self, provider: str, model: str, model_info: Mapping[str, Any],
             input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float | None:
        prices = self.prices(provider, model, model_info)
        return None if prices is None else prices.cost(input_tokens, output_tokens, cached_tokens)


def _lookup(provider: str, model: str) -> TokenPrices | None:
    provider_id = _PROVIDER_IDS.get(provider)
    if provider_id is None:
        return None
    try:
        model_price = calc_price(Usage(input_tokens=0, output_tokens=0), model_ref=model,
                                 provider_id=provider_id).model_price
    except LookupError:
        return None
    values = [model_price.input_mtok, model_price.output_mtok, model_price.cache_read_mtok]
    if not all(v is None or isinstance(v, int | float | Decimal) for v in values):
        log.info("tiered prices for %s/%s are not supported; no cost recorded", provider, model)
        return None
    input_mtok, output_mtok, cache_mtok = values
    return TokenPrices(float(input_mtok or 0) / _MTOK, float(output_mtok or 0) / _MTOK,
                       None if cache_mtok is None else float(cache_mtok) / _MTOK)
