"""``spangate_settings.dead_letter_retention`` and ``dead_letters_per_destination``: read, defaulted, refused."""

from __future__ import annotations

from typing import Any

import pytest

from app.config.settings import ConfigError, parse_config
from app.server.factory import _delivery_config

MODELS = [{"model_name": "m", "litellm_params": {"model": "mock/m"}}]


def parsed(**spangate: Any):
    return parse_config({"model_list": MODELS, "spangate_settings": spangate}, environ={})


def test_defaults_are_a_week_and_ten_thousand_per_destination() -> None:
    config = parsed()
    assert (config.dead_letter_retention, config.dead_letters_per_destination) == (7 * 86400, 10_000)
    assert not config.warnings


@pytest.mark.parametrize(("raw", "seconds"), [(3600, 3600), ("90s", 90), ("30m", 1800), ("12h", 43200),
                                              ("7d", 604800), ("2w", 1209600), ("0.5", 0.5), (" 1D ", 86400)])
def test_retention_is_seconds_or_a_duration_with_a_unit(raw: Any, seconds: float) -> None:
    config = parsed(dead_letter_retention=raw, dead_letters_per_destination=50)
    delivery = _delivery_config(config)
    assert (delivery.dead_letter_retention, delivery.dead_letters_per_destination) == (seconds, 50)


@pytest.mark.parametrize(("key", "raw"), [("dead_letter_retention", "soon"), ("dead_letter_retention", 0),
                                          ("dead_letter_retention", "-1d"), ("dead_letter_retention", True),
                                          ("dead_letter_retention", "nan"), ("dead_letters_per_destination", 0),
                                          ("dead_letters_per_destination", "many")])
def test_a_bad_value_stops_start_up_naming_the_key(key: str, raw: Any) -> None:
    with pytest.raises(ConfigError, match=f"spangate_settings.{key}"):
        parsed(**{key: raw})
