"""DatadogConfig: what the team and global forms may hold, and where the API key may go."""

from __future__ import annotations

import pytest

from exporters.datadog_logs.config import KNOWN_SITES, DatadogConfig, OperatorValue, global_vars
from exporters.plugin import BuildContext, GlobalInputs

ALLOWED = "dd_api_key, dd_site, dd_source, dd_service, dd_env"


def inputs(env: dict[str, str]) -> GlobalInputs:
    return GlobalInputs(env, {}, BuildContext(http_client=None, span_log_path=None))  # type: ignore[arg-type]


def test_team_vars_name_a_datadog_site():
    config = DatadogConfig.from_vars({"dd_api_key": " k-1 ", "dd_site": "US5.datadoghq.com."})
    assert config == DatadogConfig(api_key="k-1", site="us5.datadoghq.com")
    assert config.intake_url == "https://http-intake.logs.us5.datadoghq.com"
    assert (config.source, config.service, config.env) == ("spangate", "spangate", None)


def test_site_defaults_to_us1_and_labels_can_be_set():
    config = DatadogConfig.from_vars({"dd_api_key": "k", "dd_source": "llm", "dd_service": "gw", "dd_env": "prod"})
    assert config.intake_url == "https://http-intake.logs.datadoghq.com"
    assert (config.source, config.service, config.env) == ("llm", "gw", "prod")


def test_global_form_reads_the_seed_env_and_the_operators_base_url():
    env = {"DD_API_KEY": "k", "DD_SITE": "datadoghq.eu", "DD_SOURCE": "s", "DD_SERVICE": "svc", "DD_ENV": "e",
           "DD_BASE_URL": "http://127.0.0.1:8126/proxy/", "UNRELATED": "x"}
    config = DatadogConfig.from_vars(global_vars(inputs(env)))
    assert config == DatadogConfig(api_key="k", site="datadoghq.eu", base_url="http://127.0.0.1:8126/proxy",
                                   source="s", service="svc", env="e")
    assert config.intake_url == "http://127.0.0.1:8126/proxy"  # the operator's override wins over the site


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:9/", {"value": "http://x"}])
def test_a_team_cannot_choose_the_url_its_key_is_sent_to(base_url):
    with pytest.raises(ValueError, match="'dd_base_url' is the operator's \\(DD_BASE_URL"):
        DatadogConfig.from_vars({"dd_api_key": "k", "dd_base_url": base_url})


@pytest.mark.parametrize("site", ["evil.example", "127.0.0.1", "http-intake.logs.datadoghq.com", "datadoghq.com/x",
                                  "", None, 5])
def test_only_datadogs_own_sites_are_accepted(site):
    with pytest.raises(ValueError) as caught:
        DatadogConfig.from_vars({"dd_api_key": "k", "dd_site": site})
    assert str(caught.value) == "dd_site must be one of Datadog's sites: " + ", ".join(KNOWN_SITES)


def test_known_sites_are_the_libraries_logs_sites():
    from datadog_api_client import ApiClient, Configuration
    from datadog_api_client.v2.api.logs_api import LogsApi

    with ApiClient(Configuration()) as client:
        servers = LogsApi(client)._submit_log_endpoint.settings["servers"]
    assert tuple(servers[0]["variables"]["site"]["enum_values"]) == KNOWN_SITES


@pytest.mark.parametrize(
    ("vars", "message"),
    [
        ({"dd_site": "datadoghq.com"},
         f"missing datadog callback var 'dd_api_key' (DD_API_KEY in the global form); allowed: {ALLOWED}"),
        ({"dd_api_key": "k", "dd_app_key": "a"}, f"unknown datadog callback var 'dd_app_key'; allowed: {ALLOWED}"),
        ({"dd_api_key": "  "}, "dd_api_key must not be empty"),
        ({"dd_api_key": 7}, "dd_api_key must be a string, not int"),
        ({"dd_api_key": "k\r\nX-Injected: 1"}, "dd_api_key must not contain whitespace or control characters"),
        ({"dd_api_key": "k", "dd_env": "a,b"}, "dd_env must be 1-100 printable characters without spaces or commas"),
        ({"dd_api_key": "k", "dd_service": 1}, "dd_service must be a string, not int"),
    ],
)
def test_bad_vars_are_named(vars, message):
    with pytest.raises(ValueError) as caught:
        DatadogConfig.from_vars(vars)
    assert str(caught.value) == message


def test_operator_base_url_is_validated_as_a_url():
    with pytest.raises(ValueError, match="DD_BASE_URL must not carry credentials"):
        DatadogConfig.from_vars({"dd_api_key": "k", "dd_base_url": OperatorValue("https://u:p@intake.example")})


def test_repr_hides_the_key():
    config = DatadogConfig.from_vars({"dd_api_key": "secret-dd-key"})
    assert "secret-dd-key" not in repr(config)
    assert repr(config) == ("DatadogConfig(api_key='****', intake_url='https://http-intake.logs.datadoghq.com', "
                            "source='spangate', service='spangate', env=None)")
