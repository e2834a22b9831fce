"""OpenAI-compatible hosts by name: each prefix's documented base URL, key variable, span name and price."""

from __future__ import annotations

from typing import Any

import genai_prices.data
import httpx
import pytest

from app.calls.pricing import PriceBook
from app.config.keys import ConfigError
from app.config.model_list import DeploymentConfig
from app.config.providers import hosts
from app.config.settings import parse_config
from app.providers.openai_compat import OpenAICompatibleDeployment


def one(model: str, env: dict[str, str] | None = None, **params: Any) -> DeploymentConfig:
    raw = {"model_list": [{"model_name": "m", "litellm_params": {"model": model, **params}}]}
    return parse_config(raw, environ=env or {}).deployments[0]


def provider_name(config: DeploymentConfig) -> str:
    return OpenAICompatibleDeployment(config, httpx.MockTransport(lambda _: httpx.Response(500))).provider_name


# (prefix, default base, the key variable LiteLLM reads first, gen_ai.provider.name, genai-prices id,
#  a model genai-prices lists for it, or None where it publishes no prices)
HOSTED = [
    ("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", "groq", "groq", "llama-3.3-70b-versatile"),
    ("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY", "mistral_ai", "mistral", "mistral-large-latest"),
    ("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "deepseek", "deepseek", "deepseek-chat"),
    ("together_ai", "https://api.together.xyz/v1", "TOGETHER_API_KEY", "together_ai", "together",
     "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
    ("fireworks_ai", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY", "fireworks_ai", "fireworks",
     "llama-v3p1-8b-instruct"),
    ("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", "openrouter", "openrouter",
     "openai/gpt-4o"),
    ("perplexity", "https://api.perplexity.ai", "PERPLEXITYAI_API_KEY", "perplexity", "perplexity", "sonar"),
    ("xai", "https://api.x.ai/v1", "XAI_API_KEY", "x_ai", "x-ai", "grok-3"),
    ("deepinfra", "https://api.deepinfra.com/v1/openai", "DEEPINFRA_API_KEY", "deepinfra", None, None),
    ("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY", "cerebras", "cerebras", "llama3.1-8b"),
    ("lm_studio", "http://localhost:1234/v1", "LM_STUDIO_API_KEY", "lm_studio", None, None),
    ("llamafile", "http://127.0.0.1:8080/v1", "LLAMAFILE_API_KEY", "llamafile", None, None),
    ("ollama", "http://localhost:11434/v1", "OLLAMA_API_KEY", "ollama", None, None),
    ("ollama_chat", "http://localhost:11434/v1", "OLLAMA_API_KEY", "ollama", None, None),
]


@pytest.mark.parametrize(("prefix", "base", "key_var", "name", "price_id", "priced"), HOSTED)
def test_a_hosted_prefix_goes_to_its_documented_host_with_the_key_of_its_variable(
        prefix: str, base: str, key_var: str, name: str, price_id: str | None, priced: str | None) -> None:
    d = one(f"{prefix}/some-model", {key_var: "key-from-env", "OPENAI_API_KEY": "sk-openai-env"})
    assert (d.api_base, d.api_key) == (base, "key-from-env")  # never OpenAI's key, nor its host
    assert provider_name(d) == name
    assert hosts.PRICE_IDS.get(prefix) == price_id


@pytest.mark.parametrize(("prefix", "base", "key_var", "name", "price_id", "priced"), HOSTED)
def test_api_key_and_api_base_given_win_over_the_variables(
        prefix: str, base: str, key_var: str, name: str, price_id: str | None, priced: str | None) -> None:
    d = one(f"{prefix}/m", {key_var: "key-from-env"}, api_key="given", api_base="http://127.0.0.1:9/v1/")
    assert (d.api_base, d.api_key) == ("http://127.0.0.1:9/v1", "given")


@pytest.mark.parametrize(("prefix", "priced"), [(row[0], row[5]) for row in HOSTED if row[5]])
def test_each_priced_host_maps_to_a_genai_prices_provider_that_prices_its_models(prefix: str, priced: str) -> None:
    assert hosts.PRICE_IDS[prefix] in {p.id for p in genai_prices.data.providers}
    d = one(f"{prefix}/{priced}")
    prices = PriceBook().prices(d.provider, d.upstream_model, d.model_info)
    assert prices is not None and prices.input > 0 and prices.output > 0


def test_without_a_key_or_its_variable_a_host_is_called_with_no_key() -> None:
    # Local servers need none; a hosted one answers 401, which names the missing key better than we can.
    assert one("ollama/llama3").api_key is None
    assert one("groq/llama3", {"GROQ_API_KEY": ""}).api_key is None  # set but empty is unset, as LiteLLM reads it


@pytest.mark.parametrize(("prefix", "names"), [
    ("together_ai", ["TOGETHER_API_KEY", "TOGETHER_AI_API_KEY", "TOGETHERAI_API_KEY", "TOGETHER_AI_TOKEN"]),
    ("fireworks_ai", ["FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY", "FIREWORKSAI_API_KEY", "FIREWORKS_AI_TOKEN"]),
    ("perplexity", ["PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"]),
    ("openrouter", ["OPENROUTER_API_KEY", "OR_API_KEY"]),
])
def test_every_key_variable_litellm_reads_is_read_in_its_order(prefix: str, names: list[str]) -> None:
    for i, name in enumerate(names):
        env = {later: f"key-{later}" for later in names[i:]}
        assert one(f"{prefix}/m", env).api_key == f"key-{name}"


@pytest.mark.parametrize(("prefix", "variable"), [
    ("groq", "GROQ_API_BASE"), ("deepseek", "DEEPSEEK_API_BASE"), ("together_ai", "TOGETHER_AI_API_BASE"),
    ("fireworks_ai", "FIREWORKS_API_BASE"), ("perplexity", "PERPLEXITY_API_BASE"),
    ("openrouter", "OPENROUTER_API_BASE"), ("xai", "XAI_API_BASE"), ("deepinfra", "DEEPINFRA_API_BASE"),
    ("cerebras", "CEREBRAS_API_BASE"), ("hosted_vllm", "HOSTED_VLLM_API_BASE"), ("lm_studio", "LM_STUDIO_API_BASE"),
    ("llamafile", "LLAMAFILE_API_BASE"), ("ollama", "OLLAMA_API_BASE"), ("openai", "OPENAI_BASE_URL"),
    ("openai", "OPENAI_API_BASE"), ("azure", "AZURE_API_BASE"),
])
def test_a_base_variable_stands_in_for_api_base_and_api_base_still_wins(prefix: str, variable: str) -> None:
    assert one(f"{prefix}/m", {variable: "http://10.0.0.7:8000/v1"}).api_base == "http://10.0.0.7:8000/v1"
    assert one(f"{prefix}/m", {variable: "http://10.0.0.7:8000/v1"},
               api_base="http://127.0.0.1:9/v1").api_base == "http://127.0.0.1:9/v1"


def test_mistral_and_ollama_bases_get_the_v1_litellm_adds_to_them() -> None:
    # LiteLLM's own examples write Ollama's base without /v1 (its native API); its compatible API is under /v1.
    assert one("ollama_chat/llama3", api_base="http://ollama:11434").api_base == "http://ollama:11434/v1"
    assert one("ollama/llama3", api_base="http://ollama:11434/v1/").api_base == "http://ollama:11434/v1"
    assert one("mistral/m", api_base="https://mistral.corp").api_base == "https://mistral.corp/v1"
    assert one("groq/m", api_base="http://127.0.0.1:9").api_base == "http://127.0.0.1:9"  # others as given


def test_fireworks_model_ids_get_the_account_path_they_are_served_and_priced_under() -> None:
    served = one("fireworks_ai/llama-v3p1-8b-instruct").upstream_model
    assert served == "accounts/fireworks/models/llama-v3p1-8b-instruct"
    assert one("fireworks_ai/accounts/me/models/tuned").upstream_model == "accounts/me/models/tuned"
    assert one("together_ai/meta-llama/x").upstream_model == "meta-llama/x"


def test_openai_reads_its_key_variable_and_keeps_openai_as_its_only_default_host() -> None:
    for model in ("openai/gpt-4o", "gpt-4o", "text-completion-openai/gpt-3.5-turbo-instruct"):
        d = one(model, {"OPENAI_API_KEY": "sk-env"})
        assert (d.api_base, d.api_key, provider_name(d)) == (None, "sk-env", "openai")
    assert one("openai/gpt-4o", {"OPENAI_API_KEY": "sk-env"}, api_key="sk-given").api_key == "sk-given"
    assert hosts.PRICE_IDS["openai"] == "openai"


def test_azure_reads_key_base_and_version_from_its_variables_as_litellm_does() -> None:
    env = {"AZURE_API_KEY": "az-env", "AZURE_API_BASE": "https://x.openai.azure.com", "AZURE_API_VERSION": "2025-01-01"}
    d = one("azure/gpt-4o", env)
    assert (d.api_base, d.api_key, d.api_version) == ("https://x.openai.azure.com", "az-env", "2025-01-01")
    assert (provider_name(d), hosts.PRICE_IDS["azure"]) == ("azure.ai.openai", "azure")
    given = one("azure/gpt-4o", env, api_key="k", api_base="https://y.openai.azure.com", api_version="2024-10-21")
    assert (given.api_base, given.api_key, given.api_version) == ("https://y.openai.azure.com", "k", "2024-10-21")


@pytest.mark.parametrize(("prefix", "variable"), [("hosted_vllm", "HOSTED_VLLM_API_BASE"),
                                                  ("azure", "AZURE_API_BASE"), ("openai_like", None),
                                                  ("custom_openai", None)])
def test_a_server_only_the_operator_can_name_needs_an_api_base_or_its_variable(prefix: str,
                                                                              variable: str | None) -> None:
    also = f" (or {variable})" if variable else ""
    with pytest.raises(ConfigError) as raised:
        one(f"{prefix}/llama", {"HOSTED_VLLM_API_KEY": "k", "OPENAI_API_KEY": "sk-x"})
    assert str(raised.value) == f"model_list[0].litellm_params.api_base: required for {prefix}/ deployments{also}"


def test_hosted_vllm_takes_its_optional_key_from_its_variable() -> None:
    d = one("hosted_vllm/llama", {"HOSTED_VLLM_API_KEY": "vllm-key"}, api_base="http://vllm:8000/v1")
    assert (d.api_base, d.api_key, provider_name(d), hosts.PRICE_IDS.get("hosted_vllm")) == (
        "http://vllm:8000/v1", "vllm-key", "hosted_vllm", None)


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("GROQ_API_KEY", "gsk-abc\r\nx-injected: 1", "api_key: contains a line break"),
    ("GROQ_API_BASE", "ftp://files.example", "api_base: expected an http:// or https:// URL with a host"),
    ("AZURE_API_VERSION", "2024 10 21", "api_version: expected a version such as 2024-10-21"),
])
def test_a_variables_value_is_checked_like_the_key_it_stands_in_for_and_named(variable: str, value: str,
                                                                             says: str) -> None:
    model = "azure/gpt" if variable.startswith("AZURE") else "groq/llama"
    env = {"AZURE_API_BASE": "https://x.openai.azure.com", variable: value}
    with pytest.raises(ConfigError) as raised:
        one(model, env)
    message = str(raised.value)
    assert message.startswith(f"model_list[0].litellm_params.{says}") and message.endswith(f"(the value of {variable})")
    assert "gsk-abc" not in message


@pytest.mark.parametrize("model", ["cohere/command-r", "together/llama", "fireworks/llama", "x-ai/grok",
                                   "perplexityai/sonar", "vllm/llama", "lmstudio/llama"])
def test_a_prefix_with_no_known_host_is_refused_with_or_without_a_key_variable(model: str) -> None:
    """Near misses of the hosts' names included: each would otherwise carry its key toward a guessed host."""
    env = {"OPENAI_API_KEY": "sk-openai-env", "TOGETHER_API_KEY": "tk", "XAI_API_KEY": "xk"}
    with pytest.raises(ConfigError) as raised:
        one(model, env)
    message = str(raised.value)
    assert message.startswith(f"model_list[0].litellm_params.model: provider '{model.partition('/')[0]}' is not "
                              "supported (supported: ")
    assert all(prefix in message for prefix in ("groq", "ollama_chat", "lm_studio", "fireworks_ai"))
    assert "sk-openai-env" not in message


def test_every_host_names_a_default_or_asks_for_one_and_ollama_prefixes_share_one_row() -> None:
    for prefix, host in hosts.HOSTS.items():
        assert host.base is None or host.base.startswith(("https://", "http://localhost", "http://127.0.0.1")), prefix
        assert host.base is None or not host.base.endswith("/"), prefix
    assert hosts.HOSTS["ollama"] is hosts.HOSTS["ollama_chat"]
