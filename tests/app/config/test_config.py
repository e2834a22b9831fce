"""config.yaml -> GatewayConfig: env references, key paths in errors, warnings, callbacks and teams."""

from pathlib import Path
from typing import Any

import pytest

from app.config.settings import (
    ConfigError,
    DeploymentConfig,
    MetricsAuth,
    TeamSettingsConfig,
    UpstreamPoolConfig,
    load_config,
    parse_config,
)
from app.server.factory import _delivery_config

MODEL = {"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o-mini"}}


def parse(raw: dict[str, Any], environ: dict[str, str] | None = None):
    return parse_config(raw, environ=environ or {}, base_dir=Path("/srv/gw"))


def with_model(**sections: Any) -> dict[str, Any]:
    return {"model_list": [MODEL], **sections}


def test_a_deployment_keeps_connection_params_apart_from_default_request_params() -> None:
    config = parse({"model_list": [{
        "model_name": "gpt",
        "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": "http://up:8080/v1", "api_key": "sk-a",
                           "timeout": 30, "temperature": 0.2, "max_tokens": 50},
        "model_info": {"id": "dep-a", "input_cost_per_token": 1e-6, "team": "x"},
    }]})
    assert config.deployments == (DeploymentConfig(
        model_name="gpt", provider="openai", upstream_model="gpt-4o-mini", deployment_id="dep-a",
        api_base="http://up:8080/v1", api_key="sk-a", timeout=30.0,
        default_params={"temperature": 0.2, "max_tokens": 50},
        model_info={"id": "dep-a", "input_cost_per_token": 1e-6, "team": "x"}),)


def test_several_deployments_of_one_model_name_get_distinct_ids_and_one_listed_name() -> None:
    config = parse({"model_list": [MODEL, MODEL, {"model_name": "emb", "litellm_params": {"model": "mock/e"}}]})
    assert [d.deployment_id for d in config.deployments] == ["gpt-0", "gpt-1", "emb-0"]
    assert config.model_names == ["gpt", "emb"]


def test_a_model_without_provider_prefix_is_openai_and_prices_in_litellm_params_reach_model_info() -> None:
    config = parse({"model_list": [{"model_name": "m", "litellm_params": {
        "model": "gpt-4o", "input_cost_per_token": 2e-6, "output_cost_per_token": 4e-6}}]})
    [deployment] = config.deployments
    assert (deployment.provider, deployment.upstream_model) == ("openai", "gpt-4o")
    assert deployment.model_info == {"input_cost_per_token": 2e-6, "output_cost_per_token": 4e-6}
    assert deployment.default_params == {}


def test_os_environ_references_resolve_anywhere_a_string_goes() -> None:
    config = parse({
        "model_list": [{"model_name": "gpt", "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_key": "os.environ/UPSTREAM_KEY", "api_base": "os.environ/BASE"}}],
        "general_settings": {"master_key": "os.environ/MASTER"},
    }, {"UPSTREAM_KEY": "sk-up", "BASE": "http://b/v1", "MASTER": "sk-master-0123456789"})
    assert (config.deployments[0].api_key, config.deployments[0].api_base) == ("sk-up", "http://b/v1")
    assert config.master_key == "sk-master-0123456789"


def test_a_missing_environment_variable_is_an_error_naming_it_and_the_key_path() -> None:
    raw = {"model_list": [{"model_name": "gpt", "litellm_params": {
        "model": "openai/gpt-4o-mini", "api_key": "os.environ/NOT_SET_ANYWHERE"}}]}
    with pytest.raises(ConfigError) as info:
        parse(raw, {"OTHER": "x"})
    message = str(info.value)
    assert "NOT_SET_ANYWHERE" in message
    assert message.startswith("model_list[0].litellm_params.api_key:")


def test_environment_variables_are_exported_into_env_references_and_kept() -> None:
    config = parse({
        "environment_variables": {"UPSTREAM_KEY": "sk-from-config", "PORT": 8080},
        "model_list": [{"model_name": "gpt", "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_key": "os.environ/UPSTREAM_KEY"}}],
    }, {"UPSTREAM_KEY": "sk-from-process"})
    assert config.deployments[0].api_key == "sk-from-config"
    assert dict(config.environment_variables) == {"UPSTREAM_KEY": "sk-from-config", "PORT": "8080"}


@pytest.mark.parametrize(("raw", "expected"), [
    ({}, "model_list: required"),
    ({"model_list": []}, "model_list: must list at least one model"),
    ({"model_list": {"gpt": 1}}, "model_list: expected a list, got"),
    ({"model_list": [{"model_name": "gpt"}]}, "model_list[0].litellm_params: expected a mapping"),
    ({"model_list": [{"litellm_params": {"model": "x"}}]}, "model_list[0].model_name: expected a non-empty string"),
    ({"model_list": [{"model_name": "gpt", "litellm_params": {"model": "openai/x", "timeout": "soon"}}]},
     "model_list[0].litellm_params.timeout: expected a number, got"),
    ({"model_list": [{"model_name": "gpt", "litellm_params": {"model": "openai/x", "timeout": -1}}]},
     "model_list[0].litellm_params.timeout: must not be negative"),
    ({"model_list": [MODEL, {"model_name": "az", "litellm_params": {"model": "azure/gpt"}}]},
     "model_list[1].litellm_params.api_base: required for azure/ deployments"),
    ({"model_list": [{"model_name": "gpt", "litellm_params": {"model": "openai/x"},
                      "model_info": {"input_cost_per_token": "cheap"}}]},
     "model_list[0].model_info.input_cost_per_token: expected a number"),
    (with_model(litellm_settings={"turn_off_message_logging": "maybe"}),
     "litellm_settings.turn_off_message_logging: expected true or false"),
    (with_model(litellm_settings={"success_callback": [1]}), "litellm_settings.success_callback[0]: expected a non"),
    (with_model(litellm_settings={"callbacks": {"file": True}}), "litellm_settings.callbacks: expected a list"),
    (with_model(general_settings={"max_request_body_bytes": 10}),
     "general_settings.max_request_body_bytes: expected a whole number >= 1024, got 10"),
    (with_model(general_settings={"max_request_body_bytes": "lots"}),
     "general_settings.max_request_body_bytes: expected a whole number >= 1024, got 'lots'"),
    (with_model(litellm_settings={"default_team_settings": [{"success_callback": ["langfuse"]}]}),
     "litellm_settings.default_team_settings[0].team_id: expected a non-empty string"),
    (with_model(spangate_settings={"durable_delivery": 3}), "spangate_settings.durable_delivery: expected true"),
    (with_model(spangate_settings={"header_read_timeout_seconds": 0}),
     "spangate_settings.header_read_timeout_seconds: must be more than 0 seconds"),
    (with_model(spangate_settings={"max_connections_per_worker": 0}),
     "spangate_settings.max_connections_per_worker: expected a whole number >= 1, got 0"),
    (with_model(spangate_settings={"upstream_max_connections": 10, "upstream_max_connections_per_origin": 11}),
     "spangate_settings.upstream_max_connections_per_origin: at most upstream_max_connections (10), got 11"),
    (with_model(spangate_settings={"upstream_pool_wait_seconds": 0}),
     "spangate_settings.upstream_pool_wait_seconds: must be more than 0 seconds"),
    (with_model(spangate_settings={"max_upstream_response_bytes": 100}),
     "spangate_settings.max_upstream_response_bytes: expected a whole number >= 1024, got 100"),
    (with_model(spangate_settings={"max_sse_event_bytes": "big"}),
     "spangate_settings.max_sse_event_bytes: expected a whole number >= 1024, got 'big'"),
    ([1, 2], "config: expected a mapping, got"),
])
def test_a_bad_value_stops_parsing_with_its_key_path_and_what_is_allowed(raw: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(raw)
    assert str(info.value).startswith(expected), str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_keys_are_warnings_with_their_path_not_errors() -> None:
    config = parse({**with_model(litellm_settings={"cache": True, "success_callback": ["file"]},
                                 general_settings={"alerting": ["slack"]}), "server_settings": {}})
    assert config.warnings == ("server_settings: unknown key, ignored", "litellm_settings.cache: unknown key, ignored",
                               "general_settings.alerting: unknown key, ignored")
    assert config.success_callback == ("file",)


def test_callbacks_go_to_both_success_and_failure_without_duplicates() -> None:
    config = parse(with_model(litellm_settings={"success_callback": ["file", "langfuse"], "failure_callback": "file",
                                                "callbacks": ["console", "file"]}))
    assert config.success_callback == ("file", "langfuse", "console")
    assert config.failure_callback == ("file", "console")


def test_default_team_settings_keep_their_callbacks_and_vars() -> None:
    config = parse(with_model(litellm_settings={"default_team_settings": [
        {"team_id": "alpha", "success_callback": ["langfuse"], "callbacks": ["console"],
         "langfuse_public_key": "pk", "langfuse_secret": "sk", "turn_off_message_logging": True},
        {"team_id": "beta"},
    ]}))
    assert config.default_team_settings == (
        TeamSettingsConfig(team_id="alpha", success_callback=("langfuse", "console"), failure_callback=("console",),
                           callback_vars={"langfuse_public_key": "pk", "langfuse_secret": "sk"},
                           turn_off_message_logging=True),
        TeamSettingsConfig(team_id="beta"),
    )


def test_spangate_settings_paths_are_relative_to_the_config_file() -> None:
    config = parse(with_model(spangate_settings={"data_dir": "state", "span_log_path": "/var/log/spans.jsonl"}))
    assert config.data_dir == Path("/srv/gw/state")
    assert config.resolved_span_log_path == Path("/var/log/spans.jsonl")
    assert parse(with_model()).resolved_span_log_path == Path("/srv/gw/spangate-data/spans.jsonl")


def test_defaults_when_sections_are_absent() -> None:
    config = parse(with_model())
    assert (config.success_callback, config.failure_callback, config.turn_off_message_logging) == ((), (), False)
    assert (config.master_key, config.max_request_body_bytes, config.warnings) == (None, 10 * 1024 * 1024, ())
    assert (config.header_read_timeout_seconds, config.max_connections_per_worker) == (10.0, 2048)
    assert config.upstream_pool == UpstreamPoolConfig(max_connections=1000, max_per_origin=500, wait_seconds=2.0)


def test_upstream_answer_bounds_default_generously_and_can_be_set() -> None:
    defaults = parse(with_model())
    assert (defaults.max_upstream_response_bytes, defaults.max_sse_event_bytes) == (32 * 1024 * 1024, 1024 * 1024)
    config = parse(with_model(spangate_settings={"max_upstream_response_bytes": "65536", "max_sse_event_bytes": 4096}))
    assert (config.max_upstream_response_bytes, config.max_sse_event_bytes, config.warnings) == (65536, 4096, ())


def test_load_config_reads_yaml_and_names_the_file_when_it_cannot(tmp_path: Path) -> None:
    good = tmp_path / "config.yaml"
    good.write_text("model_list:\n  - model_name: m\n    litellm_params: {model: mock/m}\n"
                    "litellm_settings: {turn_off_message_logging: 'True'}\n")
    config = load_config(good, environ={})
    assert config.deployments[0].provider == "mock"
    assert config.turn_off_message_logging is True
    assert config.data_dir == tmp_path / "spangate-data"
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_list: [\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml is not valid YAML"):
        load_config(bad, environ={})
    with pytest.raises(ConfigError, match=r"cannot read config file .*missing\.yaml"):
        load_config(tmp_path / "missing.yaml", environ={})


@pytest.mark.parametrize(("params", "env", "expected"), [
    ({"api_key": "os.environ/K"}, {"K": "sk-x\r\nX-Injected: 1"},
     "model_list[0].litellm_params.api_key: contains a line break"),
    ({"api_key": "os.environ/K"}, {"K": "sk-x\n"}, "model_list[0].litellm_params.api_key: contains a line break"),
    ({"api_key": "sk-\x00x"}, {}, "model_list[0].litellm_params.api_key: contains a NUL character"),
    ({"extra_headers": {"x-team": "os.environ/H"}}, {"H": "a\rb"},
     "model_list[0].litellm_params.extra_headers.x-team: contains a line break"),
    ({"extra_headers": {"x team": "v"}}, {},
     "model_list[0].litellm_params.extra_headers: 'x team' is not a valid header"),
    ({"model": "azure/gpt", "api_base": "https://x.openai.azure.com", "api_version": "2024-10-21\r\nX: 1"}, {},
     "model_list[0].litellm_params.api_version: expected a version"),
    ({"api_base": "http://up\n.example/v1"}, {}, "model_list[0].litellm_params.api_base: contains a line break"),
    ({"api_base": "ftp://up/v1"}, {}, "model_list[0].litellm_params.api_base: expected an http:// or https:// URL"),
    ({"api_base": "http://up/v1?x=1"}, {}, "model_list[0].litellm_params.api_base: a base URL takes no query"),
    ({"model": "azure/gpt 4?x", "api_base": "https://x.openai.azure.com"}, {},
     "model_list[0].litellm_params.model: the Azure deployment name"),
], ids=["key-crlf", "key-trailing-lf", "key-nul", "header-cr", "header-name", "api-version", "base-lf",
        "base-scheme", "base-query", "azure-name"])
def test_values_that_reach_the_upstream_wire_are_checked_at_start_up(params: dict[str, Any], env: dict[str, str],
                                                                     expected: str) -> None:
    raw = {"model_list": [{"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o-mini", **params}}]}
    with pytest.raises(ConfigError) as info:
        parse(raw, env)
    assert str(info.value).startswith(expected), str(info.value)
    assert "sk-x" not in str(info.value)  # the message names the key, never its value


def test_ordinary_wire_values_pass() -> None:
    config = parse({"model_list": [{"model_name": "gpt", "litellm_params": {
        "model": "azure/gpt-4o_prod.1", "api_base": "https://x.openai.azure.com/", "api_version": "2024-08-01-preview",
        "api_key": "0123456789abcdef0123456789abcdef", "extra_headers": {"X-Org": "a b\tc"}}}]})
    assert config.deployments[0].headers == {"X-Org": "a b\tc"}


def test_an_unknown_key_close_to_a_known_one_says_which_was_meant() -> None:
    config = parse(with_model(general_settings={"max_request_body_byte": 2048, "master_key_hash": "abc"},
                              spangate_settings={"data-dir": "d", "allow_unauthenticted": True}))
    assert config.warnings == (
        "general_settings.max_request_body_byte: unknown key; did you mean max_request_body_bytes?",
        "general_settings.master_key_hash: unknown key, ignored",  # a real LiteLLM key: no guess, no stop
        "spangate_settings.data-dir: unknown key; did you mean data_dir?",
        "spangate_settings.allow_unauthenticted: unknown key; did you mean allow_unauthenticated?")


@pytest.mark.parametrize(("section", "key", "meant"), [
    ("general_settings", "master_ky", "master_key"),
    ("general_settings", "MASTER-KEY", "master_key"),
    ("general_settings", "database_uri", "database_url"),
    ("litellm_settings", "success_callbacks", "success_callback"),
    ("litellm_settings", "failure_calback", "failure_callback"),
    ("litellm_settings", "callback", "callbacks"),
])
def test_a_likely_misspelling_of_a_key_that_guards_calls_stops_start_up(section: str, key: str, meant: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(with_model(**{section: {key: "sk-" + "x" * 30 if meant == "master_key" else ["file"]}}))
    assert str(info.value).startswith(f"{section}.{key}: unknown key; did you mean {meant}? Spangate will not start")


def test_a_litellm_params_key_like_a_connection_setting_is_warned_about_and_still_sent() -> None:
    config = parse({"model_list": [{"model_name": "gpt", "litellm_params": {
        "model": "openai/gpt-4o", "api_bsae": "http://127.0.0.1:9/v1", "temperature": 0.2, "api_keys": "k"}}]})
    assert config.warnings == (
        "model_list[0].litellm_params.api_bsae: not a connection setting, so it is sent upstream as a request "
        "parameter; did you mean api_base?",
        "model_list[0].litellm_params.api_keys: not a connection setting, so it is sent upstream as a request "
        "parameter; did you mean api_key?")
    assert config.deployments[0].default_params == {"api_bsae": "http://127.0.0.1:9/v1", "temperature": 0.2,
                                                    "api_keys": "k"}


@pytest.mark.parametrize(("settings", "expected"), [({}, True), ({"legacy_genai_metrics": False}, False)])
def test_the_v141_genai_metrics_stay_on_for_this_release_unless_switched_off(settings: dict[str, Any],
                                                                           expected: bool) -> None:
    assert parse(with_model(spangate_settings=settings)).legacy_genai_metrics is expected


def test_legacy_genai_metrics_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError, match=r"spangate_settings\.legacy_genai_metrics"):
        parse(with_model(spangate_settings={"legacy_genai_metrics": "sometimes"}))


@pytest.mark.parametrize(("value", "expected"), [
    (None, MetricsAuth()),
    ("master_key", MetricsAuth()),
    ("none", MetricsAuth(open=True)),
    ("scrape-" + "t" * 20, MetricsAuth(token="scrape-" + "t" * 20)),
])
def test_metrics_auth_is_resolved_once(value: str | None, expected: MetricsAuth) -> None:
    settings = {} if value is None else {"metrics_auth": value}
    assert parse(with_model(spangate_settings=settings)).metrics_auth == expected


@pytest.mark.parametrize("value", ["master-key", "None", "short-token"])
def test_a_metrics_auth_that_is_neither_keyword_nor_a_long_token_stops_start_up(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^spangate_settings\.metrics_auth: expected none, master_key, or a scrape "
                                          r"token of at least 16 characters$"):
        parse(with_model(spangate_settings={"metrics_auth": value}))


@pytest.mark.parametrize(("raw", "expected"), [
    (with_model(litellm_settings={"master_key": "sk-" + "x" * 30}),
     "litellm_settings.master_key: unknown key here; master_key belongs under general_settings"),
    ({**with_model(), "master_key": "sk-" + "x" * 30},
     "master_key: unknown key here; master_key belongs under general_settings"),
    (with_model(general_settings={"success_callback": ["file"]}),
     "general_settings.success_callback: unknown key here; success_callback belongs under litellm_settings"),
])
def test_a_key_that_guards_calls_in_the_wrong_section_stops_start_up(raw: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(raw)
    assert str(info.value).startswith(expected), str(info.value)


def test_delivery_linger_defaults_to_a_fifth_of_a_second_and_is_bounded() -> None:
    assert parse(with_model()).delivery_linger_seconds == 0.2
    assert parse(with_model(spangate_settings={"delivery_linger_seconds": 2})).delivery_linger_seconds == 2.0
    for bad, says in ((31, "at most 30 seconds"), (-1, "must not be negative"), ("soon", "expected a number")):
        with pytest.raises(ConfigError, match=f"spangate_settings.delivery_linger_seconds: {says}"):
            parse(with_model(spangate_settings={"delivery_linger_seconds": bad}))


def test_a_quiet_destinations_linger_is_bounded_by_delivery_linger_max_seconds() -> None:
    def lingers(**spangate: object) -> tuple[float, float]:
        config = parse(with_model(spangate_settings=spangate))
        return config.delivery_linger_seconds, config.delivery_linger_max_seconds

    assert lingers() == (0.2, 1.5)
    delivery = _delivery_config(parse(with_model(spangate_settings={"delivery_linger_max_seconds": 2})))
    assert (delivery.batch_delay, delivery.max_batch_delay) == (0.2, 2.0)  # what the scheduler is given
    assert lingers(delivery_linger_max_seconds=0.2) == (0.2, 0.2)  # no growth
    assert lingers(delivery_linger_seconds=0.5, delivery_linger_max_seconds="3") == (0.5, 3.0)
    assert lingers(delivery_linger_seconds=5) == (5.0, 5.0)  # a config that chose a long linger keeps it
    for raw, says in (({"delivery_linger_max_seconds": 31}, "at most 30 seconds"),
                      ({"delivery_linger_max_seconds": -1}, "must not be negative"),
                      ({"delivery_linger_max_seconds": "later"}, "expected a number"),
                      ({"delivery_linger_seconds": 1, "delivery_linger_max_seconds": 0.5},
                       r"at least delivery_linger_seconds \(1\), got 0.5")):
        with pytest.raises(ConfigError, match=f"spangate_settings.delivery_linger_max_seconds: {says}"):
            parse(with_model(spangate_settings=raw))


@pytest.mark.parametrize("model", ["cohere/command-r", "sagemaker/jumpstart-x", "replicate/meta/llama-3",
                                   "huggingface/bigcode/starcoder", "meta-llama/Llama-3-8B"])
@pytest.mark.parametrize("api_base", [None, "http://127.0.0.1:9/v1"])
def test_a_provider_the_gateway_does_not_speak_stops_start_up_naming_it(model: str, api_base: str | None) -> None:
    """Its key was once sent to api.openai.com; with an api_base it would be spoken to in the wrong dialect."""
    entry = {"model_name": "c", "litellm_params": {"model": model, "api_key": "sk-ant-secret",
                                                     **({"api_base": api_base} if api_base else {})}}
    prefix = model.partition("/")[0]
    with pytest.raises(ConfigError) as raised:
        parse({"model_list": [MODEL, MODEL, MODEL, entry]})
    message = str(raised.value)
    assert message.startswith(f"model_list[3].litellm_params.model: provider '{prefix}' is not supported (supported: ")
    assert message.endswith("openai/<model> with an api_base serves any OpenAI-compatible server")
    assert "sk-ant-secret" not in message


@pytest.mark.parametrize(("model", "base"), [("groq/llama-3.3-70b", "https://api.groq.com/openai/v1"),
                                             ("mistral/mistral-large", "https://api.mistral.ai/v1"),
                                             ("deepseek/deepseek-chat", "https://api.deepseek.com/v1"),
                                             ("openrouter/x/y", "https://openrouter.ai/api/v1")])
def test_a_hosted_openai_compatible_prefix_goes_to_its_own_documented_host(model: str, base: str) -> None:
    [deployment] = parse({"model_list": [{"model_name": "m", "litellm_params": {"model": model}}]}).deployments
    assert (deployment.provider, deployment.api_base) == (model.partition("/")[0], base)
    [given] = parse({"model_list": [{"model_name": "m", "litellm_params": {
        "model": model, "api_base": "http://127.0.0.1:8000/v1"}}]}).deployments
    assert given.api_base == "http://127.0.0.1:8000/v1"


@pytest.mark.parametrize("prefix", ["hosted_vllm", "openai_like", "azure"])
def test_a_self_hosted_prefix_without_an_api_base_has_no_host_to_fall_back_to(prefix: str) -> None:
    with pytest.raises(ConfigError, match=rf"^model_list\[0\]\.litellm_params\.api_base: required for {prefix}/ "):
        parse({"model_list": [{"model_name": "m", "litellm_params": {"model": f"{prefix}/llama"}}]})
    [deployment] = parse({"model_list": [{"model_name": "m", "litellm_params": {
        "model": f"{prefix}/llama", "api_base": "http://127.0.0.1:8000/v1"}}]}).deployments
    assert deployment.api_base == "http://127.0.0.1:8000/v1"


def test_openai_and_unprefixed_models_keep_openai_as_their_only_default_host() -> None:
    deployments = parse({"model_list": [MODEL, {"model_name": "n", "litellm_params": {"model": "gpt-4o"}}]}).deployments
    assert [(d.provider, d.api_base) for d in deployments] == [("openai", None), ("openai", None)]


def test_supports_responses_is_a_boolean_read_at_start_up() -> None:
    entry = {**MODEL, "model_info": {"supports_responses": "true"}}
    assert parse({"model_list": [entry]}).deployments[0].model_info == {"supports_responses": True}
    with pytest.raises(ConfigError, match=r"model_list\[0\]\.model_info\.supports_responses: expected true or false"):
        parse({"model_list": [{**MODEL, "model_info": {"supports_responses": "yes"}}]})
