"""``gemini/<model>`` (the Gemini API, keyed) and ``vertex_ai/<model>`` (Google Cloud, OAuth).

Both are read here at start-up, so a missing key, project or unreadable credentials file stops the
gateway with one line naming the key. Nothing here imports google-auth: the credentials are read as
JSON, and turned into google-auth credentials only when a Vertex AI deployment is built
(``app.providers.vertex``), so a gateway without one never loads it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.config.keys import ConfigError
from app.config.provider_kind import ProviderKind
from app.config.providers.anthropic import AnthropicParams, read_params
from app.config.providers.base import NativeProvider, ParamsContext, ResolvedProvider, first_named, host_label
from app.config.values import as_opt_str

GEMINI_BASE = "https://generativelanguage.googleapis.com"
DEFAULT_LOCATION = "us-central1"  # LiteLLM's default when neither vertex_location nor VERTEXAI_LOCATION is set
# Credential fields never to be echoed: a service account's key, an authorized user's secrets.
_SECRET_FIELDS = ("private_key", "private_key_id", "client_secret", "refresh_token")
_SERVICE_ACCOUNT_FIELDS = ("client_email", "private_key", "token_uri")


@dataclass(frozen=True, slots=True)
class VertexParams:
    project: str
    location: str
    publisher: str  # "google" (Gemini models) or "anthropic" (Claude models on Vertex AI)
    # The credentials JSON (service account, authorized user...); None: google-auth's default credentials.
    credentials: Mapping[str, Any] | None = field(default=None, repr=False)
    # Claude models only: the Messages API's max_tokens default and drop_params, read as for anthropic/.
    anthropic: AnthropicParams | None = None


def read_gemini(ctx: ParamsContext) -> ResolvedProvider:
    # GEMINI_API_KEY first, as the issue names it; GOOGLE_API_KEY too, which LiteLLM and Google's SDKs read.
    key = ctx.api_key or ctx.env.get("GEMINI_API_KEY") or ctx.env.get("GOOGLE_API_KEY")
    if not key:
        raise ConfigError(f"{ctx.where}.api_key: required for gemini/ deployments (or GEMINI_API_KEY)")
    base = ctx.api_base or ctx.env.get("GEMINI_API_BASE") or GEMINI_BASE
    return ResolvedProvider(base.rstrip("/"), key)


def read_vertex(ctx: ParamsContext) -> ResolvedProvider:
    credentials = _credentials(ctx)
    project = (_param(ctx, "vertex_project", "vertex_ai_project") or ctx.env.get("VERTEXAI_PROJECT")
               or ctx.env.get("VERTEX_PROJECT") or _from_credentials(credentials, "project_id"))
    if not project:
        raise ConfigError(f"{ctx.where}.vertex_project: required for vertex_ai/ deployments (or VERTEXAI_PROJECT)")
    named, given = first_named(ctx, ("vertex_location", "vertex_ai_location"), ("VERTEXAI_LOCATION", "VERTEX_LOCATION"))
    location = host_label(given or DEFAULT_LOCATION, named, DEFAULT_LOCATION)
    claude = ctx.upstream_model.startswith("claude")
    params = VertexParams(project, location, "anthropic" if claude else "google", credentials,
                          read_params(ctx) if claude else None)
    secrets = tuple(str(credentials[k]) for k in _SECRET_FIELDS if credentials and credentials.get(k))
    return ResolvedProvider((ctx.api_base or vertex_host(location)).rstrip("/"), None, params, secrets)


def vertex_host(location: str) -> str:
    """Vertex AI's regional endpoint; the ``global`` location has no region prefix."""
    return "https://aiplatform.googleapis.com" if location == "global" else f"https://{location}-aiplatform.googleapis.com"


def _param(ctx: ParamsContext, *names: str) -> str | None:
    for name in names:
        value = as_opt_str(ctx.params.get(name), f"{ctx.where}.{name}")
        if value:
            return value
    return None


def _from_credentials(credentials: Mapping[str, Any] | None, name: str) -> str | None:
    value = credentials.get(name) if credentials else None
    return value if isinstance(value, str) and value else None


def _credentials(ctx: ParamsContext) -> Mapping[str, Any] | None:
    """``vertex_credentials``: a mapping, a JSON string, or a path (relative to the config's folder);
    else ``VERTEXAI_CREDENTIALS``, else the file ``GOOGLE_APPLICATION_CREDENTIALS`` names (what
    google-auth's default credentials would read first); else None."""
    where = f"{ctx.where}.vertex_credentials"
    raw = ctx.params.get("vertex_credentials") or ctx.params.get("vertex_ai_credentials")
    raw = raw or ctx.env.get("VERTEXAI_CREDENTIALS")
    if not raw and ctx.env.get("GOOGLE_APPLICATION_CREDENTIALS"):
        raw, where = ctx.env["GOOGLE_APPLICATION_CREDENTIALS"], "GOOGLE_APPLICATION_CREDENTIALS"
    if not raw:
        return None
    if isinstance(raw, Mapping):
        return _checked(dict(raw), where)
    if not isinstance(raw, str):
        raise ConfigError(f"{where}: a service-account JSON (string or mapping) or a path to one")
    text = raw if raw.lstrip().startswith("{") else _read_file(raw, where, ctx.base_dir)
    try:
        data = json.loads(text)
    except ValueError:
        # The text is not shown: it may be a private key with one character wrong.
        raise ConfigError(f"{where}: not valid JSON") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a JSON object expected")
    return _checked(data, where)


def _read_file(raw: str, where: str, base_dir: Path) -> str:
    path = Path(raw).expanduser()
    path = path if path.is_absolute() else base_dir / path
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path} ({exc.strerror or type(exc).__name__})") from None


def _checked(data: dict[str, Any], where: str) -> dict[str, Any]:
    if data.get("type", "service_account") == "service_account":
        missing = [k for k in _SERVICE_ACCOUNT_FIELDS if not isinstance(data.get(k), str) or not data.get(k)]
        if missing:
            raise ConfigError(f"{where}: the service account lacks {', '.join(missing)}")
    return data


GEMINI = NativeProvider(ProviderKind.GEMINI, frozenset(), read_gemini)
# drop_params is read for Claude models (as anthropic/ reads it); max_tokens is not among these keys,
# so it stays a default request param for Gemini models, and for Claude ones sets their default as well.
VERTEX_AI = NativeProvider(ProviderKind.VERTEX_AI, frozenset({
    "drop_params", "vertex_project", "vertex_location", "vertex_credentials",
    "vertex_ai_project", "vertex_ai_location", "vertex_ai_credentials"}), read_vertex)
