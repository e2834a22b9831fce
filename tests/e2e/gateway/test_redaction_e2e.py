"""``turn_off_message_logging`` proven at every destination the gateway has: the prompt and the answer
appear in no payload any destination receives, in no span, in no log line, for the global, team and
request settings, while a call allowed to log shows its content at the same destinations (so the
check can fail). Real gateway, official openai client, loopback sinks and moto's server for AWS."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.support.aws import KEY_ID, REGION, SECRET, moto_server, new_bucket, new_table, s3_objects, table_items
from tests.support.gateway import running_gateway
from tests.support.sentry import SentryProject
from tests.support.sinks import HttpSink, always
from tests.support.teams import (
    MASTER_KEY,
    MODEL,
    SALT_KEY,
    LangfuseProject,
    admin_client,
    new_key,
    new_team,
    openai_client,
)

EMBEDDING_MODEL = "mock-embed"
# Every destination there is, each with its own sink: what each received is checked on its own.
HTTP_DESTINATIONS = ("langfuse", "generic", "datadog", "athina", "openmeter", "langsmith", "otel")
ALL = ["file", "console", *HTTP_DESTINATIONS, "s3", "dynamodb"]


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as url:
        yield url


class Destinations:
    """The sinks of one gateway run and what they received, as text to search."""

    def __init__(self, moto: str, stack: ExitStack) -> None:
        self.moto = moto
        self.http = {name: stack.enter_context(HttpSink(always(200))) for name in HTTP_DESTINATIONS}
        self.langfuse = LangfuseProject("redaction")
        self.http["langfuse"] = stack.enter_context(self.langfuse.sink)
        self.sentry = stack.enter_context(SentryProject(public_key=f"pk{secrets.token_hex(6)}"))
        self.bucket, self.table = new_bucket(moto), new_table(moto)

    def env(self) -> dict[str, str]:
        http = self.http
        return {"LANGFUSE_PUBLIC_KEY": self.langfuse.public_key, "LANGFUSE_SECRET_KEY": self.langfuse.secret_key,
                "LANGFUSE_HOST": self.langfuse.host, "GENERIC_LOGGER_ENDPOINT": http["generic"].url + "/log",
                "DD_API_KEY": "dd-key-redaction", "DD_BASE_URL": http["datadog"].url,
                "ATHINA_API_KEY": "ak-redaction", "ATHINA_BASE_URL": http["athina"].url,
                "OPENMETER_API_KEY": "om-redaction", "OPENMETER_API_ENDPOINT": http["openmeter"].url,
                "LANGSMITH_API_KEY": "ls-redaction", "LANGSMITH_PROJECT": "p",
                "LANGSMITH_ENDPOINT": http["langsmith"].url,
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": http["otel"].url + "/v1/traces",
                "OTEL_EXPORTER_OTLP_COMPRESSION": "none", "SENTRY_DSN": self.sentry.dsn,
                "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION_NAME": REGION,
                "AWS_ENDPOINT_URL_DYNAMODB": self.moto, "SPANGATE_SALT_KEY": SALT_KEY}

    def config(self, tmp_path: Path, **litellm: Any) -> dict[str, Any]:
        models = [{"model_name": MODEL, "litellm_params": {"model": f"mock/{MODEL}"}},
                  {"model_name": EMBEDDING_MODEL, "litellm_params": {"model": f"mock/{EMBEDDING_MODEL}"}}]
        return {"model_list": models,
                "litellm_settings": {"success_callback": ALL, "failure_callback": [*ALL, "sentry"],
                                     "s3_callback_params": {"s3_bucket_name": self.bucket, "s3_region_name": REGION,
                                                            "s3_endpoint_url": self.moto},
                                     "dynamodb_table_name": self.table, **litellm},
                "general_settings": {"master_key": MASTER_KEY,
                                     "database_url": f"sqlite:///{(tmp_path / 'teams.db').resolve()}"},
                "spangate_settings": {"span_log_path": str(tmp_path / "spans.jsonl"), "team_poll_seconds": 0.2}}

    def received(self, tmp_path: Path) -> dict[str, str]:
        """What each destination got, as text (bodies decoded where gzip was used)."""
        out = {name: "\n".join(r.body.decode("utf-8", "replace") for r in sink.requests)
               for name, sink in self.http.items()}
        out["sentry"] = "\n".join(r.body.decode("utf-8", "replace") for r in self.sentry.requests)
        out["s3"] = json.dumps(s3_objects(self.moto, self.bucket), default=str)
        out["dynamodb"] = json.dumps(table_items(self.moto, self.table), default=str)
        out["file"] = (tmp_path / "spans.jsonl").read_text()
        return out


def calls(base_url: str, marker: str, key: str = MASTER_KEY, **metadata: Any) -> None:
    """A chat, a streamed chat, an embedding and a failed call, each carrying ``marker`` in and out."""
    extra = {"metadata": metadata} if metadata else {}
    with openai_client(base_url, key) as client:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"in-{marker}"}],
                                       extra_body={**extra, "mock_response": f"out-{marker}"})
        stream = client.chat.completions.create(model=MODEL, stream=True,
                                                messages=[{"role": "user", "content": f"in-{marker}"}],
                                                extra_body={**extra, "mock_response": f"out-{marker}"})
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == f"out-{marker}"
        client.embeddings.create(model=EMBEDDING_MODEL, input=[f"in-{marker}"], extra_body=extra)
        with pytest.raises(Exception):  # noqa: B017 - any 4xx: the failure path is what is checked
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"in-{marker}"}],
                                           temperature=99, extra_body=extra)


Plan = Callable[[str], None]  # makes the calls, given the gateway's base URL


def plan_of(marker_calls: list[tuple[str, dict[str, Any]]]) -> Plan:
    def plan(base_url: str) -> None:
        for marker, metadata in marker_calls:
            calls(base_url, marker, **metadata)
    return plan


def run(moto: str, tmp_path: Path, capfd: pytest.CaptureFixture[str], plan: Plan | list[tuple[str, dict[str, Any]]],
        **litellm: Any) -> tuple[dict[str, str], str]:
    plan = plan_of(plan) if isinstance(plan, list) else plan
    with ExitStack() as stack:
        sinks = Destinations(moto, stack)
        with running_gateway(sinks.config(tmp_path, **litellm), data_dir=tmp_path, env=sinks.env()) as gw:
            plan(gw.base_url)
        received = sinks.received(tmp_path)
    out, err = capfd.readouterr()
    return received, out + err


def assert_nowhere(received: dict[str, str], logs: str, marker: str) -> None:
    for name, text in received.items():
        assert f"in-{marker}" not in text and f"out-{marker}" not in text, name
    assert marker not in logs


def assert_everywhere_that_logs_content(received: dict[str, str], marker: str) -> None:
    """The destinations whose payload carries messages show the allowed call's content."""
    for name in ("langfuse", "generic", "datadog", "athina", "langsmith", "otel", "file", "s3", "dynamodb"):
        assert f"in-{marker}" in received[name] and f"out-{marker}" in received[name], name


def test_every_destination_got_every_call(moto: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    received, _ = run(moto, tmp_path, capfd, [("shown", {})])
    for name, text in received.items():
        assert text.strip(), f"{name} received nothing: the redaction tests below would prove nothing there"
    assert_everywhere_that_logs_content(received, "shown")


def test_global_setting_keeps_content_from_every_destination(moto: str, tmp_path: Path,
                                                              capfd: pytest.CaptureFixture[str]) -> None:
    received, logs = run(moto, tmp_path, capfd, [("secret1", {"tag": "meta-visible"})],
                         turn_off_message_logging=True)
    assert_nowhere(received, logs, "secret1")
    for name in ("langfuse", "generic", "datadog", "file", "s3"):
        assert "meta-visible" in received[name], name  # request metadata is still logged


def test_a_request_asks_for_privacy_for_itself_only(moto: str, tmp_path: Path,
                                                     capfd: pytest.CaptureFixture[str]) -> None:
    received, logs = run(moto, tmp_path, capfd, [("secret2", {"turn_off_message_logging": True}),
                                                  ("shown2", {"log_raw_request": True})])
    assert_nowhere(received, logs, "secret2")
    assert_everywhere_that_logs_content(received, "shown2")
    assert "curl -X POST" in received["langfuse"]  # the raw request of the call that may log it


def test_team_and_key_settings_keep_their_calls_content_and_a_request_cannot_undo_them(
        moto: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Team metadata, key metadata: the global destinations get those calls without content, even
    when the request asks for logging and the raw request; another key of the same team is quiet
    too, and a key of an ordinary team logs as usual."""
    def plan(base_url: str) -> None:
        with admin_client(base_url) as admin:
            quiet_team = new_team(admin, metadata={"turn_off_message_logging": True})
            loud_team = new_team(admin)
            team_key = new_key(admin, team_id=quiet_team)
            quiet_key = new_key(admin, team_id=loud_team, metadata={"turn_off_message_logging": True})
            loud_key = new_key(admin, team_id=loud_team)
        undo = {"turn_off_message_logging": False, "log_raw_request": True}
        calls(base_url, "team-secret", team_key, **undo)
        calls(base_url, "key-secret", quiet_key, **undo)
        calls(base_url, "shown4", loud_key)

    received, logs = run(moto, tmp_path, capfd, plan)
    assert_nowhere(received, logs, "team-secret")
    assert_nowhere(received, logs, "key-secret")
    assert "curl -X POST" not in received["langfuse"] + received["file"]
    assert_everywhere_that_logs_content(received, "shown4")
