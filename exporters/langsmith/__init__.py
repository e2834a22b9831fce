"""LangSmith destination: settings (``config``), pure span mapping (``encode``), transport (``exporter``).

OTLP/HTTP to ``{base}/otel/v1/traces`` rather than LangSmith's runs batch API: the gateway already
holds each call as an OTel span with the GenAI names LangSmith reads, the OTLP encoder is shared and
checked against opentelemetry's own, and the wire contract (contracts.md, issue #11) names this path.
"""

from exporters.langsmith import config
from exporters.langsmith.config import LangSmithConfig
from exporters.langsmith.encode import encode_langsmith
from exporters.langsmith.exporter import LangSmithSpanExporter
from exporters.plugin import DestinationType

__all__ = ["DESTINATIONS", "LangSmithConfig", "LangSmithSpanExporter", "encode_langsmith"]

DESTINATIONS = (
    DestinationType("langsmith", LangSmithConfig.from_vars, lambda c, ctx: LangSmithSpanExporter(c, ctx.http_client),
                    config.global_vars, secret_vars=config.SECRET_VARS,
                    team_vars=config.ALLOWED_VARS, required_vars=frozenset({config.API_KEY_VAR}),
                    base_urls=lambda c: {config.BASE_URL_VAR: c.base_url}),
)
