"""Reading config.yaml loads no destination: the registry and the SDKs behind it (boto3, sentry-sdk,
the Datadog client) load where destinations are built, at start-up (``check_destinations``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app.config.keys import DESTINATION_KEYS
from app.config.settings import parse_config
from exporters.registry import _MODULES, builtin_registry

REPO = Path(__file__).resolve().parents[3]
SDKS = ("boto3", "botocore", "sentry_sdk", "datadog_api_client", "langfuse")

# Run in a fresh interpreter: this test process has long imported every destination.
_PROBE = """
import json, sys
from app.config.settings import parse_config

names = json.loads(sys.argv[1])
config = parse_config({
    "model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m"}}],
    "litellm_settings": {"success_callback": names, "callbacks": names, "dynamodb_table_name": "spans",
                         "s3_callback_params": {"s3_bucket_name": "b"},
                         "default_team_settings": [{"team_id": "t", "callbacks": names}]},
}, environ={})
print(json.dumps({"modules": sorted(sys.modules), "success_callback": config.success_callback}))
"""


def test_parsing_a_config_that_names_every_destination_imports_none_of_them() -> None:
    names = builtin_registry().names
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(names)], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout)
    assert seen["success_callback"] == names  # every name was read, none resolved
    loaded = set(seen["modules"])
    assert loaded.isdisjoint({*SDKS, "exporters.registry", "exporters.plugin", *(m.__name__ for m in _MODULES)})
    assert not [m for m in loaded if m.split(".")[0] in SDKS]


def test_the_plain_keys_config_sets_aside_for_destinations_are_the_ones_they_declare() -> None:
    assert builtin_registry().settings_keys == DESTINATION_KEYS


def test_a_destinations_own_keys_are_handed_on_not_warned_about() -> None:
    litellm = {"dynamodb_table_name": "spans", "s3_callback_params": {"s3_region": "x"}, "dynamodb_table": "typo"}
    config = parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m"}}],
                           "litellm_settings": litellm}, environ={})
    assert (config.callback_keys, config.callback_settings) == ({"dynamodb_table_name": "spans"},
                                                                {"s3_callback_params": {"s3_region": "x"}})
    assert config.warnings == ("litellm_settings.dynamodb_table: unknown key, ignored",)
