"""``otlp``: a team's calls to any backend that speaks OTLP/HTTP (Phoenix, Opik, Braintrust, Honeycomb,
Grafana, Datadog LLM Observability, a collector of its own).

A name of its own, not ``otel``: ``otel`` is the operator's gateway-wide view of every span and must
stay out of teams' hands (a team must not redirect or switch off the operator's traces). ``otlp`` is
a trace destination (``traces=True``): a team's entry receives that team's spans, the gateway span and
its upstream HTTP child, and nothing of another team's. The transport is ``exporters.otlp``'s exporter.
"""

from functools import partial

from exporters.otlp import OtlpHttpSpanExporter
from exporters.otlp_backend import config
from exporters.otlp_backend.config import OtlpBackendConfig
from exporters.otlp_backend.encode import JSON_CONTENT_TYPE, encode_json, encode_protobuf
from exporters.plugin import BuildContext, DestinationType, from_env

__all__ = ["DESTINATIONS", "OtlpBackendConfig", "build"]


def build(settings: OtlpBackendConfig, ctx: BuildContext) -> OtlpHttpSpanExporter:
    if settings.protocol == "http/json":
        return OtlpHttpSpanExporter(settings.transport, ctx.http_client, content_type=JSON_CONTENT_TYPE,
                                    encode=partial(encode_json, attributes=settings.resource_attributes))
    return OtlpHttpSpanExporter(settings.transport, ctx.http_client,
                                encode=partial(encode_protobuf, attributes=settings.resource_attributes))


DESTINATIONS = (
    DestinationType("otlp", OtlpBackendConfig.from_vars, build, from_env({}), settings_section="otlp_callback_params",
                    secret_vars=config.SECRET_VARS, traces=True,
                    team_vars=config.ALLOWED_VARS, required_vars=frozenset({config.ENDPOINT_VAR}),
                    base_urls=lambda c: {config.ENDPOINT_VAR: c.endpoint}),
)
