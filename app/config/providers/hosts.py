"""Prefixes served over OpenAI's wire format: where each one's calls go, and with which key.

Each host is one row, as LiteLLM reads it (``_get_openai_compatible_provider_info`` and each
provider's ``*ChatConfig``): ``api_base``, else the first of its base variables that is set, else
its documented default; ``api_key``, else the first of its key variables. A prefix with no default
needs an ``api_base`` (or its variable): it never falls back to another provider's host, since the
key written for it would go there (an unknown prefix once went to api.openai.com with its key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.config.keys import ConfigError
from app.config.providers.base import ParamsContext, ResolvedProvider
from app.config.wire_values import check_wire_values
from contracts import semconv as sc


@dataclass(frozen=True, slots=True)
class Host:
    base: str | None  # the documented default base URL; None: the deployment names one
    key_vars: tuple[str, ...] = ()  # read in this order when api_key is absent
    base_vars: tuple[str, ...] = ()  # read in this order when api_base is absent
    provider_name: str | None = None  # gen_ai.provider.name: the conventions' value; None: the prefix
    price_id: str | None = None  # genai-prices provider id; None: no published prices (self-hosted)
    base_suffix: str = ""  # what LiteLLM appends to an api_base without it (Mistral's and Ollama's /v1)
    model_path: str = ""  # put before a model id that lacks it (Fireworks' accounts/fireworks/models/)
    base_optional: bool = False  # no base at all is fine: the deployment's own default (OpenAI's host)
    version_vars: tuple[str, ...] = ()  # api_version when the entry gives none (Azure)


_OPENAI = Host(None, ("OPENAI_API_KEY",), ("OPENAI_BASE_URL", "OPENAI_API_BASE"), sc.PROVIDER_OPENAI, "openai",
               base_optional=True)
_OLLAMA = Host("http://localhost:11434/v1", ("OLLAMA_API_KEY",), ("OLLAMA_API_BASE",), "ollama",
               base_suffix="/v1")
HOSTS: Mapping[str, Host] = {
    # OpenAI's own host is the deployment's default (app.providers.openai_compat): no base here.
    "openai": _OPENAI,
    "text-completion-openai": _OPENAI,
    "azure": Host(None, ("AZURE_API_KEY",), ("AZURE_API_BASE",), sc.PROVIDER_AZURE, "azure",
                  version_vars=("AZURE_API_VERSION",)),
    "groq": Host("https://api.groq.com/openai/v1", ("GROQ_API_KEY",), ("GROQ_API_BASE",), "groq", "groq"),
    "mistral": Host("https://api.mistral.ai/v1", ("MISTRAL_API_KEY",), (), "mistral_ai", "mistral",
                    base_suffix="/v1"),
    "deepseek": Host("https://api.deepseek.com/v1", ("DEEPSEEK_API_KEY",), ("DEEPSEEK_API_BASE",), "deepseek",
                     "deepseek"),
    "together_ai": Host("https://api.together.xyz/v1", ("TOGETHER_API_KEY", "TOGETHER_AI_API_KEY",
                                                        "TOGETHERAI_API_KEY", "TOGETHER_AI_TOKEN"),
                        ("TOGETHER_AI_API_BASE",), None, "together"),
    "fireworks_ai": Host("https://api.fireworks.ai/inference/v1", ("FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY",
                                                                   "FIREWORKSAI_API_KEY", "FIREWORKS_AI_TOKEN"),
                         ("FIREWORKS_API_BASE",), None, "fireworks", model_path="accounts/fireworks/models/"),
    "perplexity": Host("https://api.perplexity.ai", ("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"),
                       ("PERPLEXITY_API_BASE",), "perplexity", "perplexity"),
    "openrouter": Host("https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY", "OR_API_KEY"),
                       ("OPENROUTER_API_BASE",), None, "openrouter"),
    "xai": Host("https://api.x.ai/v1", ("XAI_API_KEY",), ("XAI_API_BASE",), "x_ai", "x-ai"),
    "deepinfra": Host("https://api.deepinfra.com/v1/openai", ("DEEPINFRA_API_KEY",), ("DEEPINFRA_API_BASE",)),
    "cerebras": Host("https://api.cerebras.ai/v1", ("CEREBRAS_API_KEY",), ("CEREBRAS_API_BASE",), None, "cerebras"),
    # Servers run by the operator: the key is optional; the default is the local port the server documents.
    "hosted_vllm": Host(None, ("HOSTED_VLLM_API_KEY",), ("HOSTED_VLLM_API_BASE",)),
    "lm_studio": Host("http://localhost:1234/v1", ("LM_STUDIO_API_KEY",), ("LM_STUDIO_API_BASE",)),
    "llamafile": Host("http://127.0.0.1:8080/v1", ("LLAMAFILE_API_KEY",), ("LLAMAFILE_API_BASE",)),
    # Ollama's OpenAI-compatible endpoints (/v1), for both of LiteLLM's Ollama prefixes.
    "ollama": _OLLAMA,
    "ollama_chat": _OLLAMA,
    # Any OpenAI-compatible server, named only by its api_base; no variable, so no key meant for another.
    "openai_like": Host(None),
    "custom_openai": Host(None),
}
# gen_ai.provider.name and genai-prices ids by prefix, for the deployment and the price book.
PROVIDER_NAMES = {prefix: host.provider_name or prefix for prefix, host in HOSTS.items()}
PRICE_IDS = {prefix: host.price_id for prefix, host in HOSTS.items() if host.price_id}


def read(ctx: ParamsContext, prefix: str) -> ResolvedProvider:
    """The base URL and key of a deployment of ``prefix`` (one of ``HOSTS``), after their variables."""
    host = HOSTS[prefix]
    base = ctx.api_base or _from_env(host.base_vars, ctx, "api_base") or host.base
    if base is None and not host.base_optional:
        also = f" (or {' / '.join(host.base_vars)})" if host.base_vars else ""
        raise ConfigError(f"{ctx.where}.api_base: required for {prefix}/ deployments{also}")
    key = ctx.api_key or _from_env(host.key_vars, ctx, "api_key")
    return ResolvedProvider(None if base is None else _with_suffix(base, host.base_suffix), key)


def api_version(prefix: str, given: str | None, ctx: ParamsContext) -> str | None:
    return given or _from_env(HOSTS[prefix].version_vars, ctx, "api_version")


def upstream_model(prefix: str, model: str) -> str:
    path = HOSTS[prefix].model_path
    return model if not path or model.startswith("accounts/") else path + model


def _from_env(names: tuple[str, ...], ctx: ParamsContext, key: str) -> str | None:
    """The first of ``names`` set in the environment, checked as the ``key`` it stands in for."""
    name = next((n for n in names if ctx.env.get(n)), None)
    if name is None:
        return None
    value = ctx.env[name]
    try:  # what a variable holds reaches the wire like the key it replaces: the same checks
        check_wire_values({key: value}, {}, None, ctx.where.removesuffix(".litellm_params"))
    except ConfigError as exc:
        raise ConfigError(f"{exc} (the value of {name})") from None
    return value


def _with_suffix(base: str, suffix: str) -> str:
    base = base.rstrip("/")
    return base if not suffix or base.endswith(suffix) else base + suffix
