"""What routes read of the services Litestar can only treat opaquely, as small Protocols.

Litestar checks each injected value against its parameter's type, and for a dataclass it walks every
field's type with msgspec: ``GatewayConfig`` (a frozen dataclass holding the callback policy's
``IPv4Network | IPv6Network``) made every route that asked for it answer 500. A runtime-checkable
Protocol is checked with ``isinstance`` only. The open store is a Protocol too for another reason:
its class (``app.server.factory.StoreLink``) lives in the server, which imports the routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from app.config.settings import DeploymentConfig, MetricsAuth
from app.store import Store, StoreWatcher
from app.teams.secrets import SecretBox


@runtime_checkable
class ApiSettings(Protocol):
    """What the routes read of the gateway's settings (``GatewayConfig``)."""

    @property
    def master_key(self) -> str | None: ...
    @property
    def metrics_auth(self) -> MetricsAuth: ...
    @property
    def deployments(self) -> Sequence[DeploymentConfig]: ...
    @property
    def model_names(self) -> Sequence[str]: ...
    @property
    def success_callback(self) -> Sequence[str]: ...
    @property
    def failure_callback(self) -> Sequence[str]: ...


@runtime_checkable
class OpenStore(Protocol):
    """The open team and key store, the box that seals callback secrets, and the watcher that keeps
    this instance's snapshot current."""

    @property
    def store(self) -> Store: ...
    @property
    def secret_box(self) -> SecretBox: ...
    @property
    def watcher(self) -> StoreWatcher: ...

    def db_status(self) -> str: ...
