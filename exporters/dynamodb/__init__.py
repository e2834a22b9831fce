"""DynamoDB archive: settings (``config``), pure span -> items (``encode``), transport (``exporter``)."""

from exporters.aws import GatewayVars
from exporters.dynamodb import config
from exporters.dynamodb.config import DynamoDBConfig
from exporters.dynamodb.encode import encode_dynamodb
from exporters.dynamodb.exporter import DynamoDBSpanExporter
from exporters.plugin import DestinationType, GlobalInputs

__all__ = ["DESTINATIONS", "DynamoDBConfig", "DynamoDBSpanExporter", "encode_dynamodb"]


def _global_vars(inputs: GlobalInputs) -> GatewayVars:
    """``litellm_settings.dynamodb_table_name`` over the AWS environment."""
    return GatewayVars({**config.env_vars(inputs.env), **{k: v for k, v in inputs.settings.items() if v is not None}})


def _endpoint(c: DynamoDBConfig) -> dict[str, str]:
    return {config.ENDPOINT_VAR: c.access.endpoint_url} if c.access.endpoint_url else {}


DESTINATIONS = (
    DestinationType("dynamodb", DynamoDBConfig.from_vars, lambda c, _ctx: DynamoDBSpanExporter(c), _global_vars,
                    settings_keys=frozenset({config.TABLE_VAR}), secret_vars=config.SECRET_VARS,
                    team_vars=config.ALLOWED_VARS, required_vars=frozenset({config.TABLE_VAR}),
                    base_urls=_endpoint),
)
