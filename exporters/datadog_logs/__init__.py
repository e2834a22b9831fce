"""Datadog logs destination: settings (``config``), pure span mapping (``encode``), transport (``exporter``).

The package is ``datadog_logs``, not ``datadog``, so it never shadows the ``datadog`` or
``datadog_api_client`` imports; the callback name users write is ``datadog``.
"""

from exporters.datadog_logs import config
from exporters.datadog_logs.config import DatadogConfig
from exporters.datadog_logs.encode import encode_datadog
from exporters.datadog_logs.exporter import DatadogSpanExporter, new_api_client
from exporters.plugin import DestinationType

__all__ = ["DESTINATIONS", "DatadogConfig", "DatadogSpanExporter", "encode_datadog"]

# No ``base_urls``: a team cannot give a URL, only one of Datadog's own sites (``dd_site``); the
# operator's ``DD_BASE_URL`` is the global form's, which the callback policy does not govern.
DESTINATIONS = (
    DestinationType("datadog", DatadogConfig.from_vars, lambda c, _ctx: DatadogSpanExporter(c, new_api_client(c)),
                    config.global_vars, secret_vars=config.SECRET_VARS,
                    team_vars=config.ALLOWED_VARS, required_vars=frozenset({config.API_KEY_VAR})),
)
