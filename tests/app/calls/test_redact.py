"""``app.calls.redact``: known secrets go whole and in fragments before the key-shaped patterns run."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.calls.caller import Caller
from app.calls.record import CallRecord
from app.calls.redact import FRAGMENT, deployment_secrets, masked_url, scrub, url_credentials
from app.config.settings import DeploymentConfig
from app.litellm.kwargs import call_kwargs, response_object

AZURE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
SLASHED = "AbC+def/GhI~jkl=MnO.pqr_StU-vwx+YZ09"


@pytest.mark.parametrize("key", [AZURE, SLASHED, "pk_live_51HxQwErTy", "key-" + AZURE, "sk-" + SLASHED])
@pytest.mark.parametrize("template", ["{key}", "Bearer {key}", "x-api-key: '{key}'.", "({key})"])
def test_a_known_key_goes_whole_whatever_its_shape(key: str, template: str) -> None:
    text = scrub("denied for " + template.format(key=key) + " here", [key])
    assert key not in text
    assert not any(key[i:i + FRAGMENT] in text for i in range(len(key) - FRAGMENT + 1)), text
    assert text.startswith("denied for ") and text.endswith(" here")


def test_a_prefix_or_suffix_of_eight_characters_goes_too() -> None:
    text = scrub(f"key {SLASHED[:10]}...{SLASHED[-8:]} invalid", [SLASHED])
    assert text == "key ***...*** invalid"


def test_seven_characters_of_a_key_are_left_alone() -> None:
    assert scrub(f"key ending in {AZURE[-7:]}", [AZURE]) == f"key ending in {AZURE[-7:]}"


def test_known_secrets_go_before_the_patterns_so_no_tail_survives() -> None:
    # The pattern alone would stop at '+' and leave "+def/GhI~jkl..." in clear.
    assert scrub(f"Authorization: Bearer {SLASHED}", [SLASHED]) == "Authorization: Bearer ***"
    assert scrub(f"Authorization: Bearer {SLASHED}", []) == "Authorization: Bearer ***"


def test_unknown_key_shaped_words_still_go() -> None:
    assert scrub("got sk-proj-LEAKEDabc123 and key-ABCD1234", []) == "got sk-*** and key-***"


def test_deployment_secrets_are_the_key_and_the_longer_header_values() -> None:
    secrets = deployment_secrets("k1-long-enough", {"api-key": AZURE, "x-org": "acme", "authorization": "Bearer tok"})
    assert secrets == ("k1-long-enough", AZURE, "Bearer tok")


URL = "http://svc%40acme:pa%3Ass-word-42@10.0.0.5:8000/v1"


def test_the_userinfo_of_a_url_is_masked_and_its_parts_are_secrets() -> None:
    assert masked_url(URL) == "http://***@10.0.0.5:8000/v1"
    assert masked_url("http://10.0.0.5:8000/v1") == "http://10.0.0.5:8000/v1"
    assert url_credentials(URL) == ("svc%40acme", "svc@acme", "pa%3Ass-word-42", "pa:ss-word-42")
    assert deployment_secrets("k1-long-enough", {}, URL) == ("k1-long-enough", "svc%40acme", "svc@acme",
                                                              "pa%3Ass-word-42", "pa:ss-word-42")


def test_callbacks_get_the_api_base_without_its_credentials() -> None:
    config = DeploymentConfig("m", "openai", "gpt-4o-mini", "d1", api_base=URL)
    call = CallRecord("chat", Caller(), {}, None, deployment=SimpleNamespace(config=config), response={})
    assert call_kwargs(call)["litellm_params"]["api_base"] == "http://***@10.0.0.5:8000/v1"
    assert response_object(call)._hidden_params["api_base"] == "http://***@10.0.0.5:8000/v1"
