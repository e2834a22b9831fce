"""Athina destination (``athina``): settings, pure encoder, exporter."""

from exporters.athina import config
from exporters.athina.config import AthinaConfig
from exporters.athina.encode import athina_record, encode_athina
from exporters.athina.exporter import AthinaSpanExporter
from exporters.plugin import DestinationType, from_env

__all__ = ["DESTINATIONS", "AthinaConfig", "AthinaSpanExporter", "athina_record", "encode_athina"]

DESTINATIONS = (
    DestinationType("athina", AthinaConfig.from_vars, lambda c, ctx: AthinaSpanExporter(c, ctx.http_client),
                    from_env(config.ENV_VARS), secret_vars=config.SECRET_VARS,
                    team_vars=config.ALLOWED_VARS, required_vars=frozenset({config.API_KEY_VAR}),
                    base_urls=lambda c: {config.BASE_URL_VAR: c.base_url}),
)
