"""The moderation settings: defaults, and every bad value stopping start-up with the key path named."""

from __future__ import annotations

from typing import Any

import pytest

from app.config.settings import ConfigError, parse_config
from app.hooks.moderation import check_team_metadata
from app.hooks.moderation.settings import CATEGORIES, StreamMode, parse_settings
from app.server.hook_setup import check_hooks

ENDPOINT = "https://cs.example.cognitiveservices.azure.com/"


def config(params: Any, teams: Any = None, **extra: Any) -> dict[str, Any]:
    litellm: dict[str, Any] = {"callbacks": ["azure_content_safety"], "azure_content_safety_params": params, **extra}
    if teams is not None:
        litellm["default_team_settings"] = teams
    return {"model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m"}}], "litellm_settings": litellm}


def check(raw: dict[str, Any], env: dict[str, str] | None = None) -> None:
    check_hooks(parse_config(raw, environ=env or {}))


def test_defaults_and_key_from_the_environment() -> None:
    cfg = parse_config(config({"endpoint": ENDPOINT, "key": "os.environ/CS_KEY"}), environ={"CS_KEY": "secret-1"})
    settings = parse_settings(cfg.callback_settings["azure_content_safety_params"])
    assert settings.endpoint == ENDPOINT.rstrip("/")
    assert settings.key == "secret-1" and "secret-1" not in repr(settings)
    assert settings.thresholds == dict.fromkeys(CATEGORIES, 4)
    assert (settings.fail_open, settings.stream_mode, settings.timeout) == (False, StreamMode.WINDOW, 2.0)
    assert settings.output_type == "FourSeverityLevels" and settings.max_input_chars == 500_000


def test_api_key_is_accepted_and_thresholds_override_per_category() -> None:
    settings = parse_settings({"endpoint": ENDPOINT, "api_key": "k", "thresholds": {"Hate": 2, "SelfHarm": 7},
                               "fail_open": True, "stream_mode": "end"})
    assert settings.key == "k"
    assert settings.thresholds == {"Hate": 2, "SelfHarm": 7, "Sexual": 4, "Violence": 4}
    assert settings.fail_open and settings.stream_mode is StreamMode.END


@pytest.mark.parametrize(("params", "named"), [
    ({"endpoint": ENDPOINT, "key": "k", "thresholds": {"SelfHarm": 8}},
     "azure_content_safety_params.thresholds.SelfHarm"),
    ({"endpoint": ENDPOINT, "key": "k", "thresholds": {"Hate": -1}}, "azure_content_safety_params.thresholds.Hate"),
    ({"endpoint": ENDPOINT, "key": "k", "thresholds": {"Violence": "4"}}, "thresholds.Violence"),
    ({"endpoint": ENDPOINT, "key": "k", "thresholds": {"Sexual": True}}, "thresholds.Sexual"),
    ({"endpoint": ENDPOINT, "key": "k", "thresholds": {"hate": 4}}, "thresholds.hate: unknown category"),
    ({"endpoint": ENDPOINT}, "azure_content_safety_params.key: required"),
    ({"endpoint": ENDPOINT, "key": "k", "api_key": "k2"}, "key or api_key"),
    ({"key": "k"}, "azure_content_safety_params.endpoint: required"),
    ({"endpoint": "cs.example.com", "key": "k"}, "azure_content_safety_params.endpoint"),
    ({"endpoint": ENDPOINT, "key": "k", "timeout_seconds": 0}, "timeout_seconds"),
    ({"endpoint": ENDPOINT, "key": "k", "fail_open": "yes"}, "fail_open"),
    ({"endpoint": ENDPOINT, "key": "k", "stream_mode": "buffer"}, "stream_mode"),
    ({"endpoint": ENDPOINT, "key": "k", "stream_window_chars": 0}, "stream_window_chars"),
    ({"endpoint": ENDPOINT, "key": "k", "max_input_chars": 0}, "azure_content_safety_params.max_input_chars"),
    ({"endpoint": ENDPOINT, "key": "k", "max_input_chars": "1e6"}, "azure_content_safety_params.max_input_chars"),
    ({"endpoint": ENDPOINT, "key": "k", "threshold": {}}, "azure_content_safety_params.threshold: unknown key"),
])
def test_a_bad_value_stops_start_up_naming_it(params: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        check(config(params))


def test_the_section_is_required_when_the_hook_is_listed() -> None:
    raw = config(None)
    del raw["litellm_settings"]["azure_content_safety_params"]
    with pytest.raises(ConfigError, match="azure_content_safety_params: required"):
        check(raw)


def test_a_bad_key_is_named_but_not_printed() -> None:
    with pytest.raises(ConfigError) as caught:
        check(config({"endpoint": ENDPOINT, "key": "has space"}))
    assert "has space" not in str(caught.value) and "azure_content_safety_params.key" in str(caught.value)


def test_a_team_override_is_checked_at_start_up_too() -> None:
    params = {"endpoint": ENDPOINT, "key": "k"}
    check(config(params, [{"team_id": "t1", "azure_content_safety_params": {"thresholds": {"Hate": 2}}},
                          {"team_id": "t2", "azure_content_safety_params": {"exempt": True}}]))
    with pytest.raises(ConfigError, match=r"default_team_settings\[team_id=t1\]\.azure_content_safety_params"
                                          r"\.thresholds\.Hate"):
        check(config(params, [{"team_id": "t1", "azure_content_safety_params": {"thresholds": {"Hate": 9}}}]))
    with pytest.raises(ConfigError, match=r"team_id=t1\]\.azure_content_safety_params\.exempt"):
        check(config(params, [{"team_id": "t1", "azure_content_safety_params": {"exempt": "no"}}]))


def test_team_metadata_is_checked_as_the_admin_api_receives_it() -> None:
    check_team_metadata({"azure_content_safety_params": {"thresholds": {"Violence": 6}, "exempt": False}})
    check_team_metadata({"other": 1})
    with pytest.raises(ConfigError, match=r"metadata\.azure_content_safety_params\.thresholds\.Violence"):
        check_team_metadata({"azure_content_safety_params": {"thresholds": {"Violence": 70}}})
