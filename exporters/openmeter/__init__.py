"""OpenMeter destination: usage events for billing. Settings (``config``), pure span mapping
(``encode``), transport (``exporter``)."""

from exporters.openmeter import config
from exporters.openmeter.config import OpenMeterConfig
from exporters.openmeter.encode import encode_openmeter, openmeter_events
from exporters.openmeter.exporter import OpenMeterSpanExporter
from exporters.plugin import DestinationType, from_env

__all__ = ["DESTINATIONS", "OpenMeterConfig", "OpenMeterSpanExporter", "encode_openmeter", "openmeter_events"]

DESTINATIONS = (
    DestinationType("openmeter", OpenMeterConfig.from_vars, lambda c, ctx: OpenMeterSpanExporter(c, ctx.http_client),
                    from_env(config.ENV_VARS), secret_vars=config.SECRET_VARS,
                    team_vars=config.ALLOWED_VARS, required_vars=frozenset({config.API_KEY_VAR}),
                    base_urls=lambda c: {config.ENDPOINT_VAR: c.api_endpoint}),
)
