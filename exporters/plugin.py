"""What a destination module declares about itself, and what it is given to build its exporter.

A destination is one module (or package) under ``exporters/`` that exports ``DESTINATIONS``: a
tuple of ``DestinationType``, each saying

- its callback name and aliases (``generic`` / ``generic_api``),
- how its vars become a typed config (``parse``: a ``ValueError`` names the var), in the team form
  (``callback_vars`` as LiteLLM users know them) and the global form (``global_vars``: from the
  environment and, when it has one, its own ``litellm_settings`` section such as
  ``s3_callback_params``, with ``os.environ/`` references already resolved),
- which vars are secret (encrypted at rest, masked by GET) and which are URLs (normalised,
  checked against the callback policy, and bound to the secrets sent with them),
- how its exporter is built (``build``: the exporter owns whatever client it makes and closes it
  in ``shutdown``; HTTP destinations take the shared, pooled client from ``BuildContext``),
- whether its spans wait in the durable spool, and whether it receives every span (``traces``),
- optionally, how it is told that the gateway failed to start (``startup_alert``: Sentry), sent at
  once on the caller's client because the process exits right after.

``exporters/registry.py`` lists the modules; nothing in ``app/`` or ``processors/`` names one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, TextIO

import httpx
from opentelemetry.sdk.trace.export import SpanExporter


@dataclass(frozen=True)
class BuildContext:
    """What exporters may be given: a background HTTP client (never the request path's) and paths.

    ``api_http_client`` is for destinations set through the admin API: its connections are checked
    against the callback policy (``exporters.transport.urlpolicy``). ``for_api()`` is the context to build
    those with; it fails rather than fall back to the unchecked client.
    """

    http_client: httpx.Client
    span_log_path: Path
    console: TextIO = field(default_factory=lambda: sys.stdout)
    api_http_client: httpx.Client | None = None

    def for_api(self) -> BuildContext:
        return self._api_context

    @cached_property
    def _api_context(self) -> BuildContext:
        """One per context, not one per API-set destination (each factory holds it until built)."""
        if self.api_http_client is None:
            raise ValueError("no policy-checked HTTP client to build an API-set destination with")
        return replace(self, http_client=self.api_http_client)


@dataclass(frozen=True)
class GlobalInputs:
    """Where a gateway-wide destination's vars come from."""

    env: Mapping[str, str]
    settings: Mapping[str, Any]  # its litellm_settings section (``settings_section``) and keys, else empty
    ctx: BuildContext


# (config, ctx, error type, message) -> None once the destination accepted the alert, else why not.
StartupAlert = Callable[[Any, BuildContext, str, str], str | None]


def _no_urls(_config: Any) -> Mapping[str, str]:
    return {}


@dataclass(frozen=True)
class DestinationType:
    name: str
    parse: Callable[[Mapping[str, Any]], Any]  # vars -> typed config; ValueError names the var
    build: Callable[[Any, BuildContext], SpanExporter]
    global_vars: Callable[[GlobalInputs], dict[str, Any]]  # env and settings -> vars, global form
    aliases: tuple[str, ...] = ()
    settings_section: str | None = None  # its own litellm_settings key, e.g. "s3_callback_params"
    settings_keys: frozenset[str] = frozenset()  # plain litellm_settings keys it reads ("dynamodb_table_name")
    secret_vars: frozenset[str] = frozenset()
    traces: bool = False  # receives every span (collector-style), not only the gateway's LLM spans
    team_configurable: bool = True
    spool: bool = True  # queue in the durable spool; False: in memory (a local file is its own log)
    base_urls: Callable[[Any], Mapping[str, str]] = _no_urls  # var -> the URL it connects to
    startup_alert: StartupAlert | None = None  # for a failure_callback destination, when start-up fails
    # An error tracker (Sentry) has nothing to do with a successful call: it is never queued for one,
    # even when named in success_callback or callbacks.
    failures_only: bool = False
    # The vars a team sets, in the order a form asks for them, and those ``parse`` cannot do without:
    # what the admin page's callback form is drawn from (``GET /team/{id}/callback/fields``).
    team_vars: tuple[str, ...] = ()
    required_vars: frozenset[str] = frozenset()


class UnknownDestination(ValueError):
    pass


def env_vars(env: Mapping[str, str], mapping: Mapping[str, str]) -> dict[str, Any]:
    """``{var: env[NAME]}`` for each ``var -> NAME`` that is set and non-empty."""
    return {var: env[name] for var, name in mapping.items() if env.get(name)}


def from_env(mapping: Mapping[str, str]) -> Callable[[GlobalInputs], dict[str, Any]]:
    """A ``global_vars`` for destinations configured by environment variables (and, when they have
    a settings section, by its keys, which win over the environment)."""

    def read(inputs: GlobalInputs) -> dict[str, Any]:
        return {**env_vars(inputs.env, mapping), **{k: v for k, v in inputs.settings.items() if v is not None}}

    return read


def check_vars(kind: str, vars: Mapping[str, Any], allowed: Sequence[str], required: Sequence[str] = ()) -> None:
    """The checks every ``from_vars`` starts with: an unknown var, or a required one missing (or
    null), is a ValueError naming it and what is allowed; the admin API turns it into a 400."""
    listed = ", ".join(allowed)
    for name in vars:
        if name not in allowed:
            raise ValueError(f"unknown {kind} callback var {name!r}; allowed: {listed}")
    for name in required:
        if vars.get(name) is None:
            raise ValueError(f"missing {kind} callback var {name!r}; allowed: {listed}")


def credential(var: str, value: Any) -> str:
    """A header-safe credential (a key, a token): stripped, non-empty, no whitespace or control
    characters, since a line break in it would inject another header."""
    if not isinstance(value, str):
        raise ValueError(f"{var} must be a string, not {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValueError(f"{var} must not be empty")
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise ValueError(f"{var} must not contain whitespace or control characters")
    return text
