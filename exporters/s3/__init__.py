"""S3 archive: settings (``config``), pure span -> objects (``encode``), transport (``exporter``)."""

from exporters.aws import GatewayVars
from exporters.plugin import DestinationType, GlobalInputs, env_vars
from exporters.s3 import config
from exporters.s3.config import S3Config
from exporters.s3.encode import encode_s3
from exporters.s3.exporter import S3SpanExporter

__all__ = ["DESTINATIONS", "S3Config", "S3SpanExporter", "encode_s3"]


def _global_vars(inputs: GlobalInputs) -> GatewayVars:
    """``s3_callback_params`` (``os.environ/`` resolved) over the AWS environment."""
    return GatewayVars({**env_vars(inputs.env, config.ENV_VARS),
                        **{k: v for k, v in inputs.settings.items() if v is not None}})


def _endpoint(c: S3Config) -> dict[str, str]:
    return {config.ENDPOINT_VAR: c.access.endpoint_url} if c.access.endpoint_url else {}


DESTINATIONS = (
    DestinationType("s3", S3Config.from_vars, lambda c, _ctx: S3SpanExporter(c), _global_vars,
                    settings_section="s3_callback_params", secret_vars=config.SECRET_VARS,
                    team_vars=config.ALLOWED_VARS, required_vars=frozenset({config.BUCKET_VAR}), base_urls=_endpoint),
)
