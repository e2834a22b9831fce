"""Model groups: several deployments under one ``model_name``, load-balanced with failover.

Each call starts at the next deployment in round-robin order and moves on when a deployment
cannot be reached, rate-limits (429) or fails (5xx); the last answer or error is what the client
sees. Timeouts are not retried on another deployment: the client has already waited that long.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import httpx

from app.config.provider_kind import ProviderKind
from app.config.settings import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_POOL_WAIT, DeploymentConfig
from app.errors import UpstreamUnavailable
from app.providers.base import Deployment
from app.providers.native import Resources
from app.providers.registry import build_deployment

log = logging.getLogger(__name__)
T = TypeVar("T")


def _should_fail_over(status: int) -> bool:
    return status == 429 or status >= 500


class ModelGroup:
    def __init__(self, name: str, deployments: list[Deployment], *, allow_mock_response: bool = False) -> None:
        self.name = name
        self.deployments = deployments
        # mock_response skips the upstream and writes whatever usage the client likes into its
        # team's logs and costs: only mock models, or a gateway whose operator opted in, honour it.
        self.honours_mock_response = allow_mock_response or all(d.config.kind is ProviderKind.MOCK for d in deployments)
        self._next = itertools.count()

    def order(self) -> list[Deployment]:
        if len(self.deployments) == 1:
            return self.deployments
        start = next(self._next) % len(self.deployments)
        return self.deployments[start:] + self.deployments[:start]

    async def call(self, attempt: Callable[[Deployment], Awaitable[T]], status_of: Callable[[T], int],
                   order: list[Deployment] | None = None) -> tuple[Deployment, T]:
        """Run ``attempt`` on deployments in order until one answers without a fail-over status."""
        order = order or self.order()
        for i, deployment in enumerate(order):
            last = i == len(order) - 1
            try:
                result = await attempt(deployment)
            except UpstreamUnavailable as exc:
                if last:
                    raise
                reason = exc.error_type
            else:
                if last or not _should_fail_over(status_of(result)):
                    return deployment, result
                reason = f"http_{status_of(result)}"
                await _discard(result)
            log.warning("deployment %s of %s failed (%s); trying the next one",
                        deployment.config.deployment_id, self.name, reason)
        raise AssertionError("unreachable: the last deployment always returns or raises")


async def _discard(result: Any) -> None:
    close = getattr(result, "aclose", None)
    if close is not None:
        await close()


class ModelRouter:
    def __init__(self, groups: Mapping[str, ModelGroup]) -> None:
        self.groups = dict(groups)

    @classmethod
    def build(cls, deployments: Iterable[DeploymentConfig], transport: httpx.AsyncBaseTransport, *,
              inject_traceparent: bool = False, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
              allow_mock_response: bool = False, pool_wait: float = DEFAULT_POOL_WAIT,
              upstream_proxy: str | None = None) -> ModelRouter:
        grouped: dict[str, list[Deployment]] = {}
        resources = Resources(transport, inject_traceparent, max_response_bytes, pool_wait, upstream_proxy)
        for config in deployments:
            grouped.setdefault(config.model_name, []).append(build_deployment(config, resources))
        return cls({name: ModelGroup(name, items, allow_mock_response=allow_mock_response)
                    for name, items in grouped.items()})

    def get(self, name: str) -> ModelGroup | None:
        return self.groups.get(name)

    @property
    def names(self) -> list[str]:
        return list(self.groups)
