"""``anthropic/<model>``: the Messages API at ``api_base`` or Anthropic's own host.

Anthropic refuses a request without ``max_tokens``, and OpenAI clients rarely send one, so each
deployment settles its default here: the ``max_tokens`` litellm_param, else the model's documented
maximum output (read from its name), else 4096. A client's ``max_tokens`` or
``max_completion_tokens`` still wins on each call.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.config.keys import ConfigError
from app.config.provider_kind import ProviderKind
from app.config.providers.base import NativeProvider, ParamsContext, ResolvedProvider, key_from
from app.config.values import as_bool, as_int

DEFAULT_BASE = "https://api.anthropic.com"
FALLBACK_MAX_TOKENS = 4096  # a model this table does not know: what LiteLLM sent for years
KEYS = frozenset({"max_tokens", "drop_params"})

# Maximum output per model family, as platform.claude.com/docs/en/models (and each model's page)
# gave it in December 2026. The longest prefix that matches a whole part of the name wins, so
# ``claude-opus-4-5-20251101`` is 64K and ``claude-opus-4-20250514`` 32K; a minor version not listed
# gets its family's figure, which errs low (more than a model's maximum is a 400, less is not).
MAX_OUTPUT_TOKENS: dict[str, int] = {
    "claude-fable-5": 128_000, "claude-opus-5": 128_000, "claude-sonnet-5": 128_000, "claude-haiku-5": 128_000,
    "claude-opus-4-8": 128_000, "claude-opus-4-7": 128_000, "claude-opus-4-6": 128_000, "claude-sonnet-4-6": 128_000,
    "claude-opus-4-5": 64_000, "claude-sonnet-4-5": 64_000, "claude-haiku-4-5": 64_000,
    "claude-sonnet-4": 64_000, "claude-3-7-sonnet": 64_000,
    "claude-opus-4-1": 32_000, "claude-opus-4": 32_000,
    "claude-3-5-sonnet": 8_192, "claude-3-5-haiku": 8_192,
    "claude-3-opus": 4_096, "claude-3-sonnet": 4_096, "claude-3-haiku": 4_096,
}
_NAME_BREAKS = "-@:."  # what may follow a family in a model id: a date, a Vertex @version, a Bedrock :0


@dataclass(frozen=True, slots=True)
class AnthropicParams:
    max_tokens: int  # sent when the client names none
    drop_params: bool = False  # True: OpenAI params Anthropic lacks are dropped instead of refused


def documented_max_output(model: str) -> int | None:
    """The model's documented maximum output, when its name says which model it is."""
    best = None
    for family in MAX_OUTPUT_TOKENS:
        if _names_family(model, family) and (best is None or len(family) > len(best)):
            best = family
    return None if best is None else MAX_OUTPUT_TOKENS[best]


def _names_family(model: str, family: str) -> bool:
    """``family``, then nothing or a date, version or minor version (``claude-sonnet-5-5`` is a Sonnet 5)."""
    return model.startswith(family) and (len(model) == len(family) or model[len(family)] in _NAME_BREAKS)


def read_params(ctx: ParamsContext) -> AnthropicParams:
    """The typed params; also what Anthropic-on-Vertex reads for its Claude models."""
    raw = ctx.params.get("max_tokens")
    if raw is None:
        max_tokens = documented_max_output(ctx.upstream_model) or FALLBACK_MAX_TOKENS
    else:
        max_tokens = as_int(raw, f"{ctx.where}.max_tokens", minimum=1)
    drop = ctx.params.get("drop_params")
    return AnthropicParams(max_tokens, False if drop is None else as_bool(drop, f"{ctx.where}.drop_params"))


def read(ctx: ParamsContext) -> ResolvedProvider:
    key = key_from(ctx, "ANTHROPIC_API_KEY")
    if not key:
        raise ConfigError(f"{ctx.where}.api_key: required for anthropic/ deployments (or ANTHROPIC_API_KEY)")
    return ResolvedProvider((ctx.api_base or DEFAULT_BASE).rstrip("/"), key, read_params(ctx))


PROVIDER = NativeProvider(ProviderKind.ANTHROPIC, KEYS, read)
