"""Langfuse destination: settings (``config``), pure span mapping (``encode``), transport (``exporter``)."""

from exporters.langfuse import config
from exporters.langfuse.config import LangfuseConfig
from exporters.langfuse.encode import encode_langfuse
from exporters.langfuse.exporter import LangfuseSpanExporter
from exporters.plugin import DestinationType, from_env

__all__ = ["DESTINATIONS", "LangfuseConfig", "LangfuseSpanExporter", "encode_langfuse"]

DESTINATIONS = (
    DestinationType("langfuse", LangfuseConfig.from_vars, lambda c, ctx: LangfuseSpanExporter(c, ctx.http_client),
                    from_env(config.ENV_VARS), secret_vars=config.SECRET_VARS,
                    team_vars=(config.PUBLIC_KEY_VAR, config.SECRET_KEY_VAR, config.HOST_VAR),
                    required_vars=frozenset({config.PUBLIC_KEY_VAR, config.SECRET_KEY_VAR}),
                    base_urls=lambda c: {config.HOST_VAR: c.host}),
)
