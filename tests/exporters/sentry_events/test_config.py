"""SentryConfig.from_vars and the destination's declaration: vars, secrets, global form, URL policy input."""

from __future__ import annotations

import httpx
import pytest

from exporters.plugin import BuildContext, GlobalInputs
from exporters.registry import builtin_registry
from exporters.sentry_events.config import SentryConfig

DSN = "https://abc123key@o42.ingest.sentry.io/4507"
ALLOWED = "sentry_dsn, sentry_environment"


def test_a_cloud_dsn():
    config = SentryConfig.from_vars({"sentry_dsn": f" {DSN} "})
    assert (config.dsn, config.base_url, config.project_id, config.environment) == (
        DSN, "https://o42.ingest.sentry.io", "4507", "production")


def test_a_self_hosted_dsn_keeps_port_and_path_prefix_and_its_environment():
    config = SentryConfig.from_vars({"sentry_dsn": "http://k@Sentry.Internal:9000/sentry/7",
                                     "sentry_environment": "staging"})
    assert (config.base_url, config.project_id, config.environment) == (
        "http://sentry.internal:9000/sentry", "7", "staging")


def test_repr_never_shows_the_key():
    assert "abc123key" not in repr(SentryConfig.from_vars({"sentry_dsn": DSN}))


@pytest.mark.parametrize(
    ("vars", "message"),
    [
        ({}, f"missing sentry callback var 'sentry_dsn'; allowed: {ALLOWED}"),
        ({"sentry_dsn": DSN, "sentry_sample_rate": 1}, f"unknown sentry callback var 'sentry_sample_rate'; "
                                                       f"allowed: {ALLOWED}"),
        ({"sentry_dsn": 42}, "sentry_dsn must be a string such as"),
        ({"sentry_dsn": "ftp://abc123key@host/1"}, "sentry_dsn must be an http(s) DSN"),
        ({"sentry_dsn": "https://o42.ingest.sentry.io/4507"}, "sentry_dsn has no public key"),
        ({"sentry_dsn": "https://abc123key@o42.ingest.sentry.io/proj"}, "sentry_dsn must end with a numeric project"),
        ({"sentry_dsn": DSN + "?x=1"}, "sentry_dsn must not have a query or a fragment"),
        ({"sentry_dsn": DSN, "sentry_environment": "pro duction"}, "sentry_environment must be 1-64 characters"),
    ],
)
def test_bad_vars_name_the_var_and_never_the_key(vars, message):
    with pytest.raises(ValueError) as info:
        SentryConfig.from_vars(vars)
    assert str(info.value).startswith(message)
    assert "abc123key" not in str(info.value)


def test_declared_as_a_destination_with_a_secret_dsn_read_from_the_environment():
    kind = builtin_registry().get("sentry")
    assert kind.secret_vars == frozenset({"sentry_dsn"})
    with httpx.Client() as client:
        ctx = BuildContext(http_client=client, span_log_path=None)  # type: ignore[arg-type]
        vars = kind.global_vars(GlobalInputs({"SENTRY_DSN": DSN, "SENTRY_ENVIRONMENT": "dev", "OTHER": "x"}, {}, ctx))
    config = kind.parse(vars)
    assert (config.dsn, config.environment) == (DSN, "dev")
    assert kind.base_urls(config) == {"sentry_dsn": "https://o42.ingest.sentry.io"}
