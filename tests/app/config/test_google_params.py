"""``gemini/`` and ``vertex_ai/`` litellm_params (``app.config.providers.google``): read once at
start-up, with LiteLLM's names and environment variables; what is missing or unreadable named in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.config.keys import ConfigError
from app.config.providers.anthropic import AnthropicParams
from app.config.providers.google import VertexParams
from app.config.settings import DeploymentConfig, parse_config

ACCOUNT = {"type": "service_account", "project_id": "from-creds", "private_key_id": "kid-0123456789",
           "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEfake\n-----END PRIVATE KEY-----\n",
           "client_email": "sa@from-creds.iam.gserviceaccount.com", "token_uri": "https://oauth2.googleapis.com/token"}


def _one(model: str, env: dict[str, str] | None = None, base_dir: Path = Path("."), **params: Any) -> DeploymentConfig:
    raw = {"model_list": [{"model_name": "m", "litellm_params": {"model": model, **params}}]}
    return parse_config(raw, environ=env or {}, base_dir=base_dir).deployments[0]


def _refused(model: str, env: dict[str, str] | None = None, **params: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        _one(model, env, **params)
    return str(caught.value)


def test_gemini_takes_its_key_from_gemini_api_key_then_google_api_key() -> None:
    assert _one("gemini/gemini-2.5-flash", {"GEMINI_API_KEY": "a", "GOOGLE_API_KEY": "b"}).api_key == "a"
    d = _one("gemini/gemini-2.5-flash", {"GOOGLE_API_KEY": "b"})
    assert (d.api_key, d.api_base) == ("b", "https://generativelanguage.googleapis.com")
    assert _one("gemini/x", {"GEMINI_API_KEY": "a", "GEMINI_API_BASE": "http://127.0.0.1:9/"}).api_base == (
        "http://127.0.0.1:9")


def test_gemini_without_a_key_stops_start_up_naming_it() -> None:
    assert _refused("gemini/gemini-2.5-flash") == (
        "model_list[0].litellm_params.api_key: required for gemini/ deployments (or GEMINI_API_KEY)")


def test_vertex_reads_project_location_and_credentials_and_goes_to_the_regional_host() -> None:
    d = _one("vertex_ai/gemini-2.5-pro", vertex_project="p1", vertex_location="europe-west4",
             vertex_credentials=json.dumps(ACCOUNT), temperature=0.1)
    assert d.params == VertexParams("p1", "europe-west4", "google", ACCOUNT)
    assert d.api_base == "https://europe-west4-aiplatform.googleapis.com" and d.api_key is None
    assert ACCOUNT["private_key"] in d.secrets and ACCOUNT["private_key_id"] in d.secrets
    assert dict(d.default_params) == {"temperature": 0.1}  # vertex_* are settings, never request params


def test_vertex_falls_back_to_litellms_variables_the_credentials_project_and_us_central1() -> None:
    d = _one("vertex_ai/gemini-2.5-pro", {"VERTEXAI_PROJECT": "env-p", "VERTEXAI_LOCATION": "global"})
    assert (d.params.project, d.params.location, d.params.credentials) == ("env-p", "global", None)
    assert d.api_base == "https://aiplatform.googleapis.com"
    d = _one("vertex_ai/gemini-2.5-pro", vertex_credentials=ACCOUNT)
    assert (d.params.project, d.params.location) == ("from-creds", "us-central1")


def test_vertex_credentials_may_be_a_path_next_to_the_config_or_google_application_credentials(tmp_path: Path) -> None:
    (tmp_path / "sa.json").write_text(json.dumps(ACCOUNT))
    assert _one("vertex_ai/gemini-x", base_dir=tmp_path, vertex_credentials="sa.json").params.credentials == ACCOUNT
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "sa.json")}
    assert _one("vertex_ai/gemini-x", env).params.credentials == ACCOUNT


def test_an_api_base_replaces_the_vertex_host() -> None:
    d = _one("vertex_ai/gemini-x", vertex_project="p", api_base="http://127.0.0.1:8/")
    assert d.api_base == "http://127.0.0.1:8"


@pytest.mark.parametrize(("params", "message"), [
    ({}, "model_list[0].litellm_params.vertex_project: required for vertex_ai/ deployments (or VERTEXAI_PROJECT)"),
    ({"vertex_project": "p", "vertex_credentials": "/nowhere/sa.json"},
     "model_list[0].litellm_params.vertex_credentials: cannot read /nowhere/sa.json (No such file or directory)"),
    ({"vertex_project": "p", "vertex_credentials": '{"private_key": "-----BEGIN'},
     "model_list[0].litellm_params.vertex_credentials: not valid JSON"),
    ({"vertex_project": "p", "vertex_credentials": {"type": "service_account", "private_key": "k"}},
     "model_list[0].litellm_params.vertex_credentials: the service account lacks client_email, token_uri"),
    ({"vertex_project": "p"}, None),
])
def test_unusable_vertex_settings_stop_start_up_in_one_line(params: dict[str, Any], message: str | None) -> None:
    if message is None:
        assert _one("vertex_ai/gemini-x", **params).params.credentials is None  # google-auth's defaults, later
    else:
        assert _refused("vertex_ai/gemini-x", **params) == message


def test_claude_on_vertex_reads_its_max_tokens_default_as_anthropic_does() -> None:
    claude = _one("vertex_ai/claude-sonnet-4-5@20250929", vertex_project="p", vertex_location="global")
    assert (claude.params.publisher, claude.params.anthropic) == ("anthropic", AnthropicParams(64_000))
    assert claude.api_base == "https://aiplatform.googleapis.com"
    own = _one("vertex_ai/claude-haiku-4-5@20251001", vertex_project="p", max_tokens=100, drop_params=True)
    assert own.params.anthropic == AnthropicParams(100, drop_params=True) and "drop_params" not in own.default_params
    assert _one("vertex_ai/gemini-2.5-flash", vertex_project="p").params.anthropic is None
    assert _refused("vertex_ai/claude-haiku-4-5", vertex_project="p", max_tokens=0) == (
        "model_list[0].litellm_params.max_tokens: expected a whole number >= 1, got 0")


def test_litellms_vertex_names_raise_no_misspelling_warning() -> None:
    raw = {"model_list": [{"model_name": "m", "litellm_params": {
        "model": "vertex_ai/gemini-x", "vertex_ai_project": "p", "vertex_ai_location": "us-east5"}}]}
    config = parse_config(raw, environ={})
    assert config.warnings == () and config.deployments[0].params.location == "us-east5"


@pytest.mark.parametrize(("env", "params", "named"), [
    ({}, {"vertex_location": "evil.example/"}, "model_list[0].litellm_params.vertex_location"),
    ({}, {"vertex_ai_location": "a.b"}, "model_list[0].litellm_params.vertex_ai_location"),
    ({"VERTEXAI_LOCATION": "evil.example#"}, {}, "VERTEXAI_LOCATION"),
    ({"VERTEX_LOCATION": "Europe West4"}, {}, "VERTEX_LOCATION")])
def test_a_location_that_is_not_a_hostname_label_stops_start_up_naming_where_it_came_from(
        env: dict[str, str], params: dict[str, str], named: str) -> None:
    """The location goes into <location>-aiplatform.googleapis.com: 'evil.example/' sent calls elsewhere."""
    message = _refused("vertex_ai/gemini-x", env, vertex_project="p", **params)
    assert message.startswith(f"{named}: ") and "lower-case letters, digits and '-'" in message
    assert _one("vertex_ai/gemini-x", {"VERTEXAI_LOCATION": "europe-west4"}, vertex_project="p").params.location \
        == "europe-west4"
