"""``module.attribute`` callbacks: what stops start-up, with which line, and what each object becomes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from app.config.settings import ConfigError, parse_config
from app.litellm.loader import UserCallbackKind, load_callback
from app.server.factory import check_destinations
from app.server.hook_setup import build_hooks
from app.teams.routing import global_specs
from exporters.registry import BuildContext, builtin_registry
from tests.support.callbacks import write_seed
from tests.support.upstream import closed_port

HANDLER, EXPORTER, PROCESSOR = UserCallbackKind.HANDLER, UserCallbackKind.EXPORTER, UserCallbackKind.PROCESSOR
SPANGATE = str(Path(sys.executable).parent / "spangate")
HANDLER_FILE = """
from app.custom_logger import CustomLogger

class MyCustomHandler(CustomLogger):
    async def {method}(self, kwargs, response_obj, start_time, end_time):
        pass

proxy_handler_instance = MyCustomHandler()
"""
OTEL_FILE = """
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

class Exporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS

class Processor(SpanProcessor):
    pass

exporter = Exporter()
processor = Processor()
"""


def module(folder: Path, text: str, name: str = "my_callbacks") -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(text))


def config(folder: Path, **litellm_settings: object):
    raw = {"model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m"}}],
           "litellm_settings": litellm_settings}
    return parse_config(raw, environ={}, base_dir=folder)


def test_the_seed_file_loads_as_a_handler(tmp_path: Path) -> None:
    write_seed(tmp_path, recorded=False)
    loaded = load_callback("custom_callbacks.proxy_handler_instance", tmp_path)
    assert loaded.kind == HANDLER and type(loaded.obj).__name__ == "MyCustomHandler"
    chain = build_hooks(config(tmp_path, callbacks="custom_callbacks.proxy_handler_instance"), {})
    assert [h.name for h in chain.hooks] == ["custom_callbacks.proxy_handler_instance"]


@pytest.mark.parametrize(("text", "name", "message"), [
    (HANDLER_FILE.format(method="async_log_success_event"), "my_callbacks.MyCustomHandler",
     "litellm_settings.callbacks: my_callbacks.MyCustomHandler is the class MyCustomHandler, not an instance of it; "
     "set an instance in the module (proxy_handler_instance = MyCustomHandler()) and name that"),
    (HANDLER_FILE.format(method="async_log_success_event"), "no_such_module.proxy_handler_instance",
     "litellm_settings.callbacks: no_such_module.proxy_handler_instance: module 'no_such_module' no "
     "no_such_module.py in"),
    (HANDLER_FILE.format(method="async_log_success_event"), "my_callbacks.proxy_handler_instanse",
     "litellm_settings.callbacks: my_callbacks.proxy_handler_instanse: my_callbacks.py has no attribute "
     "'proxy_handler_instanse'; did you mean my_callbacks.proxy_handler_instance?"),
    (HANDLER_FILE.format(method="async_log_sucess_event"), "my_callbacks.proxy_handler_instance",
     "litellm_settings.callbacks: my_callbacks.proxy_handler_instance: MyCustomHandler.async_log_sucess_event is "
     "not a callback method Spangate calls; did you mean async_log_success_event?"),
    (HANDLER_FILE.format(method="async_post_call_streaming_hook"), "my_callbacks.proxy_handler_instance",
     "MyCustomHandler.async_post_call_streaming_hook is a LiteLLM hook Spangate does not call"),
    ("import os\n\nvalue = 1 / 0\n", "my_callbacks.x",
     "litellm_settings.callbacks: my_callbacks.x: importing my_callbacks failed: ZeroDivisionError: division by zero "
     "(my_callbacks.py, line 3)"),
    ("from litellm.integrations.custom_logger import CustomLogger\n", "my_callbacks.x",
     "No module named 'litellm' (my_callbacks.py, line 1); import CustomLogger from app.custom_logger"),
    ("def broken(:\n    pass\n", "my_callbacks.x", "importing my_callbacks failed: SyntaxError: invalid syntax"),
    ("from app.custom_logger import CustomLogger\n\nclass H(CustomLogger):\n    def async_helper(self):\n"
     "        pass\n\nh = H()\n", "my_callbacks.h", "H defines none of the callback methods Spangate calls"),
    ("handler = object()\n", "my_callbacks.handler",
     "my_callbacks.handler is a object, which is neither a CustomLogger handler, a SpanExporter nor a SpanProcessor"),
], ids=["class-not-instance", "missing-module", "missing-attribute", "misspelt-method", "unsupported-hook",
        "import-raises", "litellm-import-kept", "syntax-error", "no-callback-method",
        "not-a-callback"])
def test_what_cannot_be_used_stops_start_up_naming_it(tmp_path: Path, text: str, name: str, message: str) -> None:
    module(tmp_path, text)
    parsed = config(tmp_path, callbacks=[name])
    with pytest.raises(ConfigError) as info:
        check_destinations(parsed, {})
    assert message in str(info.value)


def test_helper_methods_not_named_like_a_callback_are_fine(tmp_path: Path) -> None:
    module(tmp_path, HANDLER_FILE.format(method="async_log_success_event")
           + "\nclass WithHelpers(MyCustomHandler):\n    async def async_send_to_db(self):\n        pass\n\n"
           "    def log_helper(self):\n        pass\n\nhelped = WithHelpers()\n")
    assert load_callback("my_callbacks.helped", tmp_path).kind == HANDLER


def test_a_file_named_like_an_installed_module_is_refused(tmp_path: Path) -> None:
    module(tmp_path, HANDLER_FILE.format(method="async_log_success_event"), name="json")
    with pytest.raises(ConfigError, match=r"json\.py has the name of the installed module 'json'; rename the file"):
        load_callback("json.proxy_handler_instance", tmp_path)
    assert sys.modules["json"].__file__ != str(tmp_path / "json.py")


def test_a_handler_in_success_callback_alone_is_refused(tmp_path: Path) -> None:
    module(tmp_path, HANDLER_FILE.format(method="async_log_success_event"))
    with pytest.raises(ConfigError, match=r"is a CustomLogger handler; list it under litellm_settings\.callbacks"):
        check_destinations(config(tmp_path, success_callback=["my_callbacks.proxy_handler_instance"]), {})


def test_exporters_and_processors_become_destinations_not_hooks(tmp_path: Path) -> None:
    module(tmp_path, OTEL_FILE, name="otel_objects")
    assert load_callback("otel_objects.exporter", tmp_path).kind == EXPORTER
    assert load_callback("otel_objects.processor", tmp_path).kind == PROCESSOR
    parsed = config(tmp_path, callbacks=["otel_objects.exporter", "file"],
                    success_callback=["otel_objects.processor"])
    assert not build_hooks(parsed, {})
    with httpx.Client() as client:
        ctx = BuildContext(http_client=client, span_log_path=tmp_path / "spans.jsonl")
        specs = {s.name: s for s in global_specs(parsed, builtin_registry(), {}, ctx)}
    exporter, processor = specs["otel_objects.exporter"], specs["otel_objects.processor"]
    assert (exporter.key, exporter.callback_type, exporter.kind.traces, exporter.kind.spool) == \
        ("global/otel_objects.exporter", "success_and_failure", True, True)
    assert (processor.callback_type, processor.kind.traces, processor.kind.spool) == ("success", False, False)
    assert exporter.config is load_callback("otel_objects.exporter", tmp_path).obj  # the same object every rebuild


def test_the_cli_refuses_a_misspelt_method_before_serving(tmp_path: Path) -> None:
    module(tmp_path, HANDLER_FILE.format(method="async_log_sucess_event"))
    (tmp_path / "config.yaml").write_text("model_list:\n  - model_name: m\n    litellm_params: {model: mock/m}\n"
                                          "litellm_settings: {callbacks: my_callbacks.proxy_handler_instance}\n")
    result = subprocess.run([SPANGATE, "--config", str(tmp_path / "config.yaml"), "--port", str(closed_port())],
                            capture_output=True, text=True, timeout=20, check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "did you mean async_log_success_event?" in result.stderr

