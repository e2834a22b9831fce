"""LangSmithConfig: the team vars and the global environment, and what a bad var says."""

from __future__ import annotations

import io

import httpx
import pytest

from exporters.langsmith.config import LangSmithConfig, global_vars
from exporters.plugin import BuildContext, GlobalInputs


def test_team_vars_with_defaults():
    config = LangSmithConfig.from_vars({"langsmith_api_key": " lsv2_pt_abc "})
    assert config == LangSmithConfig("lsv2_pt_abc", None, "https://api.smith.langchain.com", None)
    assert config.traces_url == "https://api.smith.langchain.com/otel/v1/traces"


def test_self_hosted_base_and_the_otel_suffix_lang_smiths_docs_print():
    config = LangSmithConfig.from_vars({"langsmith_api_key": "k", "langsmith_project": "Team 3",
                                        "langsmith_base_url": "https://LS.example.com/api/v1/otel/",
                                        "langsmith_tenant_id": "ws-1"})
    assert (config.project, config.base_url, config.tenant_id) == ("Team 3", "https://ls.example.com/api/v1", "ws-1")
    assert config.traces_url == "https://ls.example.com/api/v1/otel/v1/traces"


@pytest.mark.parametrize(("vars", "message"), [
    ({}, "missing langsmith callback var 'langsmith_api_key'"),
    ({"langsmith_api_key": "k", "langsmith_host": "x"}, "unknown langsmith callback var 'langsmith_host'"),
    ({"langsmith_api_key": ""}, "langsmith_api_key must not be empty"),
    ({"langsmith_api_key": "a b"}, "langsmith_api_key must be ASCII without whitespace"),
    ({"langsmith_api_key": 5}, "langsmith_api_key must be a string, not int"),
    ({"langsmith_api_key": "k", "langsmith_project": "проект"}, "langsmith_project must be printable ASCII"),
    ({"langsmith_api_key": "k", "langsmith_base_url": "ftp://x"}, "langsmith_base_url must be an http(s) URL"),
    ({"langsmith_api_key": "k", "langsmith_base_url": "https://u:p@x"}, "langsmith_base_url must not carry"),
])
def test_bad_vars_are_named(vars, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LangSmithConfig.from_vars(vars)


def test_repr_hides_the_key():
    assert "secret-key" not in repr(LangSmithConfig.from_vars({"langsmith_api_key": "secret-key"}))


def inputs(env: dict[str, str]) -> GlobalInputs:
    # global_vars reads only the environment; the client is never used, so it opens no connection.
    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(500)))
    return GlobalInputs(env, {}, BuildContext(http_client=client, span_log_path=None, console=io.StringIO()))


def test_global_form_reads_lang_smiths_names_first_then_langchains():
    env = {"LANGCHAIN_API_KEY": "old", "LANGSMITH_API_KEY": "new", "LANGCHAIN_PROJECT": "p",
           "LANGSMITH_BASE_URL": "https://eu.api.smith.langchain.com", "UNRELATED": "x"}
    assert global_vars(inputs(env)) == {"langsmith_api_key": "new", "langsmith_project": "p",
                                        "langsmith_base_url": "https://eu.api.smith.langchain.com"}
    assert global_vars(inputs({"LANGCHAIN_API_KEY": "old", "LANGSMITH_ENDPOINT": "https://a",
                               "LANGSMITH_BASE_URL": "https://b"})) == {
        "langsmith_api_key": "old", "langsmith_base_url": "https://a"}
