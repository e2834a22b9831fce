"""Generic webhook destination (``generic``, alias ``generic_api``): settings, pure encoder, exporter."""

from exporters.generic import config
from exporters.generic.config import GenericConfig, LogFormat
from exporters.generic.encode import encode_json_array, encode_ndjson, encode_single, generic_record
from exporters.generic.exporter import GenericSpanExporter
from exporters.plugin import DestinationType, from_env

__all__ = ["DESTINATIONS", "GenericConfig", "GenericSpanExporter", "LogFormat", "encode_json_array",
           "encode_ndjson", "encode_single", "generic_record"]

DESTINATIONS = (
    DestinationType("generic", GenericConfig.from_vars, lambda c, ctx: GenericSpanExporter(c, ctx.http_client),
                    from_env(config.ENV_VARS), aliases=("generic_api",), secret_vars=config.SECRET_VARS,
                    team_vars=config.ALLOWED_VARS, required_vars=frozenset({config.ENDPOINT_VAR}),
                    base_urls=lambda c: {config.ENDPOINT_VAR: c.endpoint}),
)
