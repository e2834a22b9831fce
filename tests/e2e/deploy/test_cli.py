"""The ``spangate`` command, run as users run it: a subprocess of the installed console script."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import openai
import pytest
import yaml

from app import __version__
from app.cli import check_exposure, is_loopback
from app.config.settings import ConfigError, parse_config
from tests.support.gateway import running_gateway
from tests.support.postgres import fresh_database
from tests.support.process import gateway_process
from tests.support.spanlog import wait_for_spans
from tests.support.upstream import closed_port

SPANGATE = str(Path(sys.executable).parent / "spangate")
MOCK_ONLY = {"model_list": [{"model_name": "mock-gpt", "litellm_params": {"model": "mock/mock-gpt"}}],
             "litellm_settings": {"callbacks": ["file"]}}


def spangate(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SPANGATE, *args], capture_output=True, text=True, timeout=timeout, check=False)


def test_version() -> None:
    result = spangate("--version")
    assert (result.returncode, result.stdout) == (0, f"spangate {__version__}\n")


def test_help_lists_the_litellm_style_options_each_with_its_default() -> None:
    result = spangate("--help")
    assert result.returncode == 0
    for option in ("--config", "--host", "--port", "--num_workers", "--debug", "--detailed_debug", "--test",
                   "--base-url", "--api-key", "--version"):
        assert option in result.stdout, option
    text = " ".join(result.stdout.split())  # argparse wraps to the terminal's width
    for documented in ("(default: 127.0.0.1)", "(default: 4000)", "processes sharing the port (default: 1)",
                       "log at INFO, with an access log (default: WARNING)", "log at DEBUG (default: off)",
                       "(default: two built-in mock models", "model for --test (default: the first listed)"):
        assert documented in text, documented
    assert text.endswith("see README.md, section 'Configuration (LiteLLM's config.yaml)'.")


@pytest.mark.parametrize(("yaml", "message"), [
    ("model_list:\n  - model_name: m\n    litellm_params: {model: openai/x, timeout: soon}\n",
     "model_list[0].litellm_params.timeout: expected a number, got"),
    ("model_list:\n  - model_name: m\n    litellm_params: {model: openai/x, api_key: os.environ/SPANGATE_TEST_UNSET}\n",
     "model_list[0].litellm_params.api_key: environment variable SPANGATE_TEST_UNSET is not set"),
    ("model_list: [\n", "is not valid YAML"),
    ("model_list:\n  - model_name: m\n    litellm_params: {model: mock/m}\n"
     "litellm_settings: {success_callback: [braintrust-logs]}\n",
     "litellm_settings.success_callback: braintrust-logs: unknown callback 'braintrust-logs'; supported: "),
    ("model_list:\n  - model_name: m\n    litellm_params: {model: mock/m}\n"
     "litellm_settings: {success_callback: [datadog]}\n",
     "litellm_settings.success_callback: datadog: missing datadog callback var 'dd_api_key' (DD_API_KEY in the global"),
    ("model_list:\n  - model_name: m\n    litellm_params: {model: mock/m}\n"
     "litellm_settings: {default_team_settings: [{team_id: t, success_callback: [langfuse]}]}\n",
     "default_team_settings[team_id=t]: langfuse: missing langfuse callback var 'langfuse_public_key'"),
    ("model_list:\n  - model_name: m\n    litellm_params: {model: azure/d, api_base: 'https://a.example',"
     " api_version: \"2024-10-21\\nX: y\"}\n",
     "model_list[0].litellm_params.api_version: expected a version such as 2024-10-21"),
    ("model_list:\n  - model_name: m\n    litellm_params: {model: mock/m}\n"
     "environment_variables: {OTEL_RESOURCE_ATTRIBUTES: 'team=a,oops'}\n",
     "OTEL_RESOURCE_ATTRIBUTES: 'oops' is not key=value"),
    ("model_list:\n  - {model_name: m, litellm_params: {model: mock/m}}\n"
     "  - {model_name: c, litellm_params: {model: cohere/command-r, api_key: sk-ant-x}}\n",
     "model_list[1].litellm_params.model: provider 'cohere' is not supported (supported: "),
], ids=["bad-number", "missing-env-var", "bad-yaml", "unknown-callback", "datadog-without-key",
         "team-callback-missing-var",
        "api-version-line-break", "bad-resource-attributes", "unsupported-provider"])
def test_a_bad_config_exits_2_with_one_line_naming_the_key(tmp_path: Path, yaml: str, message: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml)
    result = spangate("--config", str(config), "--port", str(closed_port()))
    assert result.returncode == 2
    if "YAML" not in message:  # PyYAML's own message spans several lines; ours names the file
        assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("spangate: config error: ")
    assert message in result.stderr
    assert "sk-ant-x" not in result.stderr


def test_a_weak_master_key_is_refused_off_loopback(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("model_list:\n  - model_name: m\n    litellm_params: {model: mock/m}\n"
                      "general_settings: {master_key: sk-1234}\n")
    result = spangate("--config", str(config), "--host", "0.0.0.0", "--port", str(closed_port()))
    assert result.returncode == 2
    assert result.stderr.startswith("spangate: config error: general_settings.master_key: too weak to serve on 0.0.0.0")


def test_no_master_key_off_loopback_is_refused_with_one_line_saying_why(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(MOCK_ONLY))
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: nothing is exposed even where the check is missing
    result = spangate("--config", str(config), "--host", "192.0.2.1", "--port", str(closed_port()))
    assert result.returncode == 2
    assert result.stderr == ("spangate: config error: general_settings.master_key: not set, so anyone who reaches "
                             "192.0.2.1 could call every model at your cost; set a master key, listen on 127.0.0.1, or "
                             "set spangate_settings.allow_unauthenticated: true\n")


def test_no_master_key_is_allowed_off_loopback_only_when_the_operator_says_so() -> None:
    closed = parse_config(MOCK_ONLY, environ={})
    opened = parse_config({**MOCK_ONLY, "spangate_settings": {"allow_unauthenticated": True}}, environ={})
    check_exposure(closed, "127.0.0.1")
    check_exposure(opened, "10.1.2.3")
    with pytest.raises(ConfigError, match=r"^general_settings\.master_key: not set, so anyone who reaches 10\.1\.2\.3"):
        check_exposure(closed, "10.1.2.3")


def test_a_misspelt_master_key_stops_start_up_instead_of_serving_without_authentication(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**MOCK_ONLY, "general_settings": {"master_ky": "sk-" + "q7" * 16}}))
    result = spangate("--config", str(config), "--port", str(closed_port()))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("spangate: config error: general_settings.master_ky: unknown key; did you mean "
                                    "master_key? Spangate will not start")


def test_the_start_up_line_says_where_spans_go_and_which_store_and_warns_of_typos(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    langfuse = {"langfuse_public_key": "pk-lf-1", "langfuse_secret_key": "sk-lf-1",
                "langfuse_host": f"http://127.0.0.1:{closed_port()}"}
    config.write_text(yaml.safe_dump({
        "model_list": [{"model_name": "mock-gpt", "litellm_params": {"model": "mock/mock-gpt", "api_bsae": "x"}}],
        "litellm_settings": {"callbacks": ["file"], "cach": True, "default_team_settings": [
            {"team_id": "a", "success_callback": ["langfuse"], **langfuse}, {"team_id": "b"}]},
        "spangate_settings": {"data_dir": str(tmp_path / "data")}}))
    port = closed_port()
    with gateway_process(config, port) as proc:
        assert proc.stdout is not None
        lines = []  # warnings come before the start-up line, which is printed before the port answers
        while not lines or " on http://" not in lines[-1]:
            lines.append(proc.stdout.readline().decode())
            assert lines[-1] and len(lines) < 20, lines
    text = "".join(lines)
    assert "config: litellm_settings.cach: unknown key, ignored" in text
    assert ("config: model_list[0].litellm_params.api_bsae: not a connection setting, so it is sent upstream as a "
            "request parameter; did you mean api_base?") in text
    store = (tmp_path / "data" / "spangate.db").resolve()
    assert (f"on http://127.0.0.1:{port} with 1 model(s); spans -> file; 1 team(s) with destinations in the config, "
            f"more may be set through the admin API; store: sqlite:///{store}") in text


def test_check_exposure_allows_weak_keys_on_loopback_only() -> None:
    weak = parse_config({**MOCK_ONLY, "general_settings": {"master_key": "sk-1234"}}, environ={})
    strong = parse_config({**MOCK_ONLY, "general_settings": {"master_key": "sk-" + "q7" * 16}}, environ={})
    check_exposure(weak, "127.0.0.1")
    check_exposure(strong, "0.0.0.0")
    with pytest.raises(ConfigError, match=r"general_settings\.master_key: too weak"):
        check_exposure(weak, "10.1.2.3")
    assert [is_loopback(h) for h in ("localhost", "::1", "127.0.0.2", "0.0.0.0", "gateway.example")] == [
        True, True, True, False, False]


def test_test_mode_sends_one_chat_to_a_running_gateway_and_prints_the_reply(tmp_path: Path) -> None:
    key = "sk-cli-test-master-key-000000"
    config = {**MOCK_ONLY, "general_settings": {"master_key": key}}
    with running_gateway(config, data_dir=tmp_path) as gateway:
        result = spangate("--test", "--base-url", gateway.base_url, "--api-key", key)
        refused = spangate("--test", "--base-url", gateway.base_url)
        [span] = gateway.wait_for_spans(1)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"spangate --test: POST {gateway.base_url}/v1/chat/completions model=mock-gpt"
    assert lines[1] == "This is a mock response from mock-gpt. You said: this is a test request, write a short poem"
    assert lines[2].startswith("usage: {'prompt_tokens': ")
    assert (span["name"], span["status"]["code"]) == ("chat mock-gpt", "OK")
    assert refused.returncode == 1
    assert refused.stderr.startswith("spangate --test: HTTP 401 from GET /v1/models: ")
    assert "cannot reach" not in refused.stderr  # it was reached; the key was refused


def test_test_mode_reports_an_unreachable_gateway() -> None:
    result = spangate("--test", "--base-url", f"http://127.0.0.1:{closed_port()}")
    assert result.returncode == 1
    assert "cannot reach" in result.stderr


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def test_num_workers_runs_that_many_gateway_processes_and_every_call_is_logged_once(tmp_path: Path) -> None:
    """The multi-worker path builds each worker's app through the factory (``app_from_env``)."""
    config = tmp_path / "config.yaml"
    data = tmp_path / "data"
    config.write_text(yaml.safe_dump({**MOCK_ONLY, "spangate_settings": {"data_dir": str(data)}}))
    port = closed_port()  # free: nobody listens on it
    with gateway_process(config, port, "--num_workers", "2") as proc:
        # uvicorn spawns its workers through multiprocessing (``spawn_main``; the resource tracker is not one)
        workers = [pid for pid in _children(proc.pid) if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        ids = set()
        for i in range(30):
            reply = client.with_options(timeout=10).chat.completions.create(
                model="mock-gpt", messages=[{"role": "user", "content": f"call {i}"}])
            ids.add(reply.id)
        spans = wait_for_spans(data / "spans.jsonl", 30)
    assert len(workers) == 2, workers
    assert len(ids) == 30
    assert len(spans) == 30 and len({s["span_id"] for s in spans}) == 30
    served_by = {s["resource"]["service.instance.id"].rsplit("-", 1)[1] for s in spans}
    assert served_by <= {str(pid) for pid in workers}  # spans come from the workers, not the supervisor


@pytest.mark.parametrize("workers", ["1", "2"])
def test_start_up_with_postgres_down_exits_3_with_one_line_naming_the_store(tmp_path: Path, workers: str) -> None:
    port = closed_port()
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**MOCK_ONLY, "general_settings": {
        "database_url": f"postgresql://spangate:pg-secret-pw@127.0.0.1:{port}/gateway"}}))
    result = spangate("--config", str(config), "--port", str(closed_port()), "--num_workers", workers)
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1, result.stderr  # one line, no traceback
    assert result.stderr.startswith(f"spangate: store unavailable: postgresql://spangate:***@127.0.0.1:{port}/gateway: "
                                    "ConnectionRefusedError: ")
    assert "pg-secret-pw" not in result.stdout + result.stderr


def test_start_up_with_an_unreadable_sqlite_store_exits_3_with_one_line(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    store.write_bytes(b"not a database, " * 512)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**MOCK_ONLY, "general_settings": {"database_url": f"sqlite:///{store}"}}))
    result = spangate("--config", str(config), "--port", str(closed_port()))
    assert result.returncode == 3
    assert result.stderr == f"spangate: store unavailable: sqlite:///{store}: DatabaseError: file is not a database\n"


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_an_unwritable_spool_directory_exits_3_with_one_line_whatever_the_store(tmp_path: Path, store: str) -> None:
    """Issue 20, item 15: with PostgreSQL the spool was the first write, in the lifespan (a 59-line
    traceback). A regular file where the data directory should be: not writable even by root."""
    (tmp_path / "not-a-dir").write_text("")
    data_dir = tmp_path / "not-a-dir" / "data"
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(fresh_database()) if store == "postgres" else f"sqlite:///{tmp_path / 'teams.db'}"
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({  # no file destination: its span log would be refused first
            "model_list": MOCK_ONLY["model_list"], "general_settings": {"database_url": url},
            "spangate_settings": {"data_dir": str(data_dir)}}))
        result = spangate("--config", str(config), "--port", str(closed_port()))
    assert result.returncode == 3
    assert result.stderr == (f"spangate: cannot write the spool directory {data_dir / 'spool'} "
                             "(spangate_settings.data_dir): NotADirectoryError: Not a directory\n")


def test_an_unusable_database_url_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**MOCK_ONLY, "general_settings": {"database_url": "mysql://u@db/gw"}}))
    result = spangate("--config", str(config), "--port", str(closed_port()))
    assert result.returncode == 2
    assert result.stderr.startswith("spangate: config error: general_settings.database_url: unsupported database URL "
                                    "scheme 'mysql'")
    assert result.stderr.count("\n") == 1
