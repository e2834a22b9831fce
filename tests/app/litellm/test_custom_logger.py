"""The LiteLLM-compatible surface users import: response objects, completion_cost, overrides; and the
per-callback counters as Prometheus text."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.resources import Resource

from app.api.prometheus import build_meter_provider, render_prometheus
from app.calls.pricing import PriceBook
from app.custom_logger import CustomLogger, ResponseObject, completion_cost, overridden, plain
from app.hooks.chain import HookChain
from app.hooks.metrics import register_hook_metrics
from app.litellm.hook import callback_hook

USAGE = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}


def test_response_object_reads_as_a_dict_and_by_attribute() -> None:
    response = ResponseObject({"usage": USAGE, "choices": [{"message": {"content": "hi"}}]})
    assert response["usage"]["prompt_tokens"] == response.usage.prompt_tokens == 1000
    assert response.choices[0].message.content == "hi"
    response.choices[0].message.content = "changed"
    assert plain(response) == {"usage": USAGE, "choices": [{"message": {"content": "changed"}}]}
    assert type(plain(response)["usage"]) is dict
    with pytest.raises(AttributeError):
        _ = response.missing


def test_completion_cost_prefers_the_gateways_own_figure() -> None:
    response = ResponseObject({"model": "gpt-4o-mini", "usage": USAGE}, {"response_cost": 0.125})
    assert completion_cost(completion_response=response) == 0.125


def test_completion_cost_falls_back_to_the_price_table() -> None:
    expected = PriceBook().cost("openai", "gpt-4o-mini", {}, 1000, 500)
    assert expected is not None and expected > 0
    assert completion_cost(completion_response={"model": "gpt-4o-mini", "usage": USAGE}) == pytest.approx(expected)
    assert completion_cost(completion_response={"model": "openai/gpt-4o-mini", "usage": USAGE}) == \
        pytest.approx(expected)
    assert completion_cost(completion_response={"model": "no-such-model-anywhere", "usage": USAGE}) == 0.0
    assert completion_cost(completion_response=None) == 0.0


def test_overridden_lists_only_the_handlers_own_methods() -> None:
    class Handler(CustomLogger):
        async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
            return None

    class Plain:  # not a subclass: whatever supported methods it has count
        def log_failure_event(self, kwargs, response_obj, start_time, end_time):
            return None

    assert overridden(Handler()) == {"async_log_success_event"}
    assert overridden(Plain()) == {"log_failure_event"}
    assert overridden(CustomLogger()) == frozenset()


def test_callback_counters_render_per_callback_and_outcome() -> None:
    provider, reader = build_meter_provider(Resource.create({}))

    class Handler(CustomLogger):
        async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
            return None

    chain = HookChain([callback_hook("custom_callbacks.proxy_handler_instance", Handler())])
    stats = chain.runner.stats_for("custom_callbacks.proxy_handler_instance")
    stats.runs, stats.errors, stats.timeouts, stats.dropped = 5, 2, 1, 3
    register_hook_metrics(provider.get_meter("t"), chain)
    text = render_prometheus(reader.get_metrics_data())
    name = 'spangate_callback_runs_total{callback="custom_callbacks.proxy_handler_instance",outcome='
    for outcome, count in (("ok", 5), ("error", 2), ("timeout", 1), ("dropped", 3)):
        assert f'{name}"{outcome}"}} {count}' in text
    provider.shutdown()
