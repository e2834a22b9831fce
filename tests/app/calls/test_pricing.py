"""Cost in USD: model_info prices win; otherwise genai-prices' table, looked up once per model."""

from dataclasses import astuple

import pytest

from app.calls.pricing import PriceBook, TokenPrices

# OpenAI's list price for gpt-4o-mini: $0.15 / $0.60 per million tokens, cached input $0.075.
GPT_4O_MINI = TokenPrices(input=0.15e-6, output=0.60e-6, cache_read=0.075e-6)


def test_genai_prices_knows_gpt_4o_mini_and_its_dated_snapshot() -> None:
    book = PriceBook()
    for model in ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"):
        prices = book.prices("openai", model, {})
        assert prices is not None, model
        assert astuple(prices) == pytest.approx(astuple(GPT_4O_MINI))


def test_cost_charges_cached_input_at_the_cache_price() -> None:
    cost = PriceBook().cost("openai", "gpt-4o-mini", {}, input_tokens=1000, output_tokens=500, cached_tokens=400)
    assert cost == pytest.approx(600 * 0.15e-6 + 400 * 0.075e-6 + 500 * 0.60e-6)


def test_model_info_prices_override_the_table_and_ignore_cache_discounts() -> None:
    info = {"input_cost_per_token": 1e-3, "output_cost_per_token": "2e-3"}
    book = PriceBook()
    assert book.cost("openai", "gpt-4o-mini", info, 10, 5, cached_tokens=4) == pytest.approx(10 * 1e-3 + 5 * 2e-3)
    assert book.cost("mock", "anything", {"output_cost_per_token": 1.0}, 10, 5) == pytest.approx(5.0)


@pytest.mark.parametrize(("provider", "model"), [("openai", "no-such-model-xyz"), ("mock", "mock-gpt"),
                                                 ("my-vllm", "llama")])
def test_unknown_models_and_providers_have_no_cost(provider: str, model: str) -> None:
    assert PriceBook().cost(provider, model, {}, 100, 100) is None


def test_cached_tokens_beyond_input_are_capped() -> None:
    assert GPT_4O_MINI.cost(10, 0, cached_tokens=50) == pytest.approx(10 * 0.075e-6)
