"""Sentry destination: settings (``config``), pure span -> event mapping (``encode``), transport (``exporter``).

``failure_callback: ["sentry"]`` with ``SENTRY_DSN``, or a team's ``sentry_dsn``: each failed call is
one Sentry error event. The package is not called ``sentry`` so that it never shadows ``sentry_sdk``'s
own imports of that name.
"""

from importlib import metadata

from exporters.plugin import BuildContext, DestinationType, from_env
from exporters.sentry_events import config
from exporters.sentry_events.config import SentryConfig
from exporters.sentry_events.encode import encode_sentry, startup_event
from exporters.sentry_events.exporter import SentrySender, SentrySpanExporter

__all__ = ["DESTINATIONS", "RELEASE", "SentryConfig", "SentrySpanExporter", "encode_sentry"]


def _release() -> str:
    # Set explicitly: left unset, sentry-sdk reads SENTRY_RELEASE and runs ``git`` to find one.
    try:
        return f"spangate@{metadata.version('spangate')}"
    except metadata.PackageNotFoundError:
        return "spangate"


RELEASE = _release()


def startup_alert(config: SentryConfig, ctx: BuildContext, error_type: str, message: str) -> str | None:
    sender = SentrySender(config, ctx.http_client, release=RELEASE)
    try:
        failure = sender.send([startup_event(error_type, message)])
    finally:
        sender.close()
    return None if failure is None else (failure.reason or failure.detail)

DESTINATIONS = (
    DestinationType(config.NAME, SentryConfig.from_vars,
                    lambda c, ctx: SentrySpanExporter(c, ctx.http_client, release=RELEASE),
                    from_env(config.ENV_VARS), secret_vars=config.SECRET_VARS,
                    team_vars=config.ALLOWED_VARS, required_vars=frozenset({config.DSN_VAR}),
                    base_urls=lambda c: {config.DSN_VAR: c.base_url}, startup_alert=startup_alert,
                    failures_only=True),
)
