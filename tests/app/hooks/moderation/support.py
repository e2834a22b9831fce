"""Building the moderation hook the way the gateway does, against the loopback stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from app.calls.caller import Caller
from app.calls.record import CallRecord
from app.config.settings import GatewayConfig, parse_config
from app.hooks.chain import HookChain
from app.server.hook_setup import HookResources, build_hooks
from app.teams.directory import TeamDirectory
from app.wire.http11 import Http11Transport
from contracts import semconv as sc
from tests.support.content_safety import ContentSafetyStandIn


def moderation_config(cs: ContentSafetyStandIn, teams: Any = None, **params: Any) -> GatewayConfig:
    litellm: dict[str, Any] = {"callbacks": ["azure_content_safety"],
                               "azure_content_safety_params": {"endpoint": cs.endpoint, "key": cs.key, **params}}
    if teams is not None:
        litellm["default_team_settings"] = teams
    return parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m"}}],
                         "litellm_settings": litellm}, environ={})


class Rig:
    def __init__(self, chain: HookChain, teams: TeamDirectory, reader: InMemoryMetricReader) -> None:
        self.chain = chain
        self.teams = teams
        self.reader = reader

    def counts(self, name: str) -> dict[tuple[tuple[str, Any], ...], int]:
        data = self.reader.get_metrics_data()
        out: dict[tuple[tuple[str, Any], ...], int] = {}
        for rm in data.resource_metrics if data else ():
            for scope in rm.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            out[tuple(sorted((point.attributes or {}).items()))] = point.value
        return out


@asynccontextmanager
async def rig(cs: ContentSafetyStandIn, teams: Any = None, **params: Any) -> AsyncIterator[Rig]:
    config = moderation_config(cs, teams, **params)
    directory = TeamDirectory(config)
    reader = InMemoryMetricReader()
    transport = Http11Transport()
    chain = build_hooks(config, {}, resources=HookResources(new_transport=lambda: transport,
                                                  meter=MeterProvider(metric_readers=[reader]).get_meter("t"),
                                                  team_params=directory.hook_params))
    try:
        yield Rig(chain, directory, reader)
    finally:
        await chain.aclose()
        await transport.aclose()


def chat_call(text: str, team_id: str | None = None, **fields: Any) -> CallRecord:
    return CallRecord(operation=sc.OP_CHAT, caller=Caller(team_id=team_id), headers={}, client_ip=None,
                      request={"model": "m", "messages": [{"role": "user", "content": text}], **fields})


def chat_answer(text: str) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
