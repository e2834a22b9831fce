"""Users' callback objects named ``module.attribute`` in the config: found, imported and checked once.

``litellm_settings.callbacks: custom_callbacks.proxy_handler_instance`` names ``proxy_handler_instance``
in ``custom_callbacks.py`` beside the config file (``GatewayConfig.config_dir``; a package folder
works too), else an installed module of that name. What it holds decides what it becomes:

- a ``CustomLogger``-style handler (any object with one of ``SUPPORTED_METHODS``): a call hook
  (``app.litellm.hook``), listed under ``callbacks`` only;
- an OpenTelemetry ``SpanExporter`` or ``SpanProcessor``: a destination fed by the router and the
  delivery layer like the built-in ones (``app.litellm.destinations``), in any of the three lists.

Everything that would otherwise fail later, or quietly never run, stops start-up with a
``ConfigError`` naming the entry: a missing file or attribute, an import that raises (with its
file and line), a class where an instance belongs, and a method that looks like a callback but is
none Spangate calls (``async_log_sucess_event``; did-you-mean from ``app.config.keys.closest``).
The CLI runs these checks before it forks workers (``app.server.factory.check_destinations``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from app.config.keys import ConfigError, closest
from app.config.litellm_settings import is_hook_name
from app.config.settings import GatewayConfig
from app.custom_logger import SUPPORTED_METHODS, CustomLogger, hook_like, overridden


class UserCallbackKind(Enum):
    """What a user's object is, which decides what it becomes (see the module docstring)."""

    HANDLER = "handler"  # a CustomLogger-style handler: a call hook
    EXPORTER = "exporter"  # a SpanExporter: a destination, spooled like a remote one
    PROCESSOR = "processor"  # a SpanProcessor: a destination fed on_end from a delivery thread


# LiteLLM methods a handler may carry that Spangate does not call: said so, rather than a did-you-mean.
_NOT_CALLED = frozenset({"async_post_call_streaming_hook", "async_post_call_streaming_iterator_hook",
                         "async_logging_hook", "logging_hook", "async_dataset_hook", "log_event",
                         "async_log_event", "async_get_chat_completion_prompt", "get_chat_completion_prompt",
                         "async_pre_routing_hook", "async_filter_deployments", "async_pre_call_deployment_hook",
                         "async_post_mcp_tool_call_hook", "async_pre_mcp_tool_call_hook",
                         "async_health_check", "async_post_call_response_headers_hook"})


@dataclass(frozen=True, slots=True)
class UserCallback:
    name: str  # as configured: ``custom_callbacks.proxy_handler_instance``
    obj: Any
    kind: UserCallbackKind


def is_user_callback(name: str) -> bool:
    """A ``module.attribute`` entry (every other name is a built-in)."""
    return is_hook_name(name) and "." in name


def load_callback(name: str, config_dir: Path | None, where: str = "litellm_settings.callbacks") -> UserCallback:
    """Import and check ``name``; ``ConfigError`` (naming ``where`` and ``name``) when it cannot be used."""
    module_name, _, attr = name.rpartition(".")
    module = _import(module_name, config_dir, f"{where}: {name}")
    if not hasattr(module, attr):
        public = [a for a in vars(module) if not a.startswith("_")]
        guess, _score = closest(attr, public)
        hint = f"; did you mean {module_name}.{guess}?" if guess else ""
        raise ConfigError(f"{where}: {name}: {_origin(module)} has no attribute {attr!r}{hint}")
    obj = getattr(module, attr)
    kind = _kind(obj, f"{where}: {name}")
    if kind is UserCallbackKind.HANDLER:
        check_method_names(type(obj), f"{where}: {name}")
        if not overridden(obj):
            raise ConfigError(f"{where}: {name}: {type(obj).__name__} defines none of the callback methods "
                              f"Spangate calls: {', '.join(sorted(SUPPORTED_METHODS))}")
    return UserCallback(name, obj, kind)


def user_callbacks(config: GatewayConfig) -> list[UserCallback]:
    """Every ``module.attribute`` entry of the three lists, loaded and checked, in config order. A
    handler belongs under ``callbacks``: in ``success_callback`` alone it would silently lose its
    failure methods (or run them on successes), so that is an error too."""
    out: dict[str, UserCallback] = {}
    for name in config.hooks:
        if is_user_callback(name):
            out[name] = load_callback(name, config.config_dir)
    for section, names in (("success_callback", config.success_callback),
                           ("failure_callback", config.failure_callback)):
        for name in names:
            if not is_user_callback(name) or name in out:
                continue
            loaded = load_callback(name, config.config_dir, f"litellm_settings.{section}")
            if loaded.kind is UserCallbackKind.HANDLER:
                raise ConfigError(f"litellm_settings.{section}: {name} is a CustomLogger handler; list it under "
                                  "litellm_settings.callbacks, which runs its success and failure methods")
            out[name] = loaded
    return list(out.values())


def check_method_names(cls: type, where: str) -> None:
    """A method named like a callback (close to a supported name, or one of LiteLLM's that Spangate
    does not call) would never run: a typo until shown otherwise. Helpers named otherwise are fine."""
    own = [n for klass in cls.__mro__ if klass not in (CustomLogger, object) for n in vars(klass)]
    for method in hook_like(dict.fromkeys(own)):
        if method in SUPPORTED_METHODS or not callable(getattr(cls, method, None)):
            continue
        if method in _NOT_CALLED:
            raise ConfigError(f"{where}: {cls.__name__}.{method} is a LiteLLM hook Spangate does not call; "
                              f"supported: {', '.join(sorted(SUPPORTED_METHODS))}")
        guess, _score = closest(method, SUPPORTED_METHODS)
        if guess is not None:
            raise ConfigError(f"{where}: {cls.__name__}.{method} is not a callback method Spangate calls; "
                              f"did you mean {guess}?")


def _kind(obj: Any, where: str) -> UserCallbackKind:
    if isinstance(obj, type):
        if issubclass(obj, SpanExporter | SpanProcessor) or _handler_methods(obj):
            raise ConfigError(f"{where} is the class {obj.__name__}, not an instance of it; set an instance in "
                              f"the module (proxy_handler_instance = {obj.__name__}()) and name that")
        raise ConfigError(f"{where} is the class {obj.__name__}, not a callback object")
    if isinstance(obj, SpanExporter) or _duck(obj, "export", "shutdown"):
        return UserCallbackKind.EXPORTER
    if isinstance(obj, SpanProcessor) or _duck(obj, "on_start", "on_end"):
        return UserCallbackKind.PROCESSOR
    if isinstance(obj, CustomLogger) or _handler_methods(type(obj)) or hook_like(dir(type(obj))):
        return UserCallbackKind.HANDLER  # one with only misspelt methods is reported by check_method_names
    raise ConfigError(f"{where} is a {type(obj).__name__}, which is neither a CustomLogger handler, a "
                      "SpanExporter nor a SpanProcessor")


def _handler_methods(cls: type) -> list[str]:
    return [n for n in SUPPORTED_METHODS if callable(getattr(cls, n, None))]


def _duck(obj: Any, *methods: str) -> bool:
    return all(callable(getattr(obj, m, None)) for m in methods)


def _import(module_name: str, config_dir: Path | None, where: str) -> ModuleType:
    path = _module_file(module_name, config_dir)
    try:
        if path is None:
            return importlib.import_module(module_name)
        _check_no_clash(module_name, path, where)
        return _import_file(module_name, path)
    except ModuleNotFoundError as exc:
        if path is None and exc.name is not None and module_name.startswith(exc.name):
            looked = f"no {module_name.replace('.', '/')}.py in {config_dir}" if config_dir else "not found"
            raise ConfigError(f"{where}: module {module_name!r} {looked} and not installed") from None
        raise ConfigError(f"{where}: importing {module_name} failed: {_where_raised(exc)}") from None
    except Exception as exc:  # the user's module raised while it was imported
        raise ConfigError(f"{where}: importing {module_name} failed: {_where_raised(exc)}") from None


def _module_file(module_name: str, config_dir: Path | None) -> Path | None:
    if config_dir is None:
        return None
    base = Path(config_dir, *module_name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.resolve()
    return None


_OURS = "__spangate_callbacks__"  # set on modules this loader imported from a config folder


def _check_no_clash(module_name: str, path: Path, where: str) -> None:
    """A file named like a module the process already has (``logging.py``, ``app.py``) would replace
    it for everyone who imports it afterwards: refused, with the fix."""
    top = module_name.split(".")[0]
    existing = sys.modules.get(top)
    if existing is not None:
        clash = not getattr(existing, _OURS, False) and getattr(existing, "__file__", None) != str(path)
    else:
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        clash = spec is not None and spec.origin is not None and Path(spec.origin).resolve() != path
    if clash:
        raise ConfigError(f"{where}: {path.name} has the name of the installed module {top!r}; rename the file "
                          "(and the callbacks entry) so both can be imported")


def _import_file(module_name: str, path: Path) -> ModuleType:
    """The module at ``path``, imported once per process: every later lookup (each worker's hook
    chain, each routing rebuild) gets the same module, so the same handler object."""
    loaded = sys.modules.get(module_name)
    if loaded is not None and getattr(loaded, "__file__", None) == str(path):
        return loaded
    spec = importlib.util.spec_from_file_location(module_name, path,
                                                  submodule_search_locations=[str(path.parent)]
                                                  if path.name == "__init__.py" else None)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    setattr(module, _OURS, True)
    sys.modules[module_name] = module
    try:
        with _on_path(_top_folder(path, module_name)):
            spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def _top_folder(path: Path, module_name: str) -> Path:
    """The folder the module's name is relative to (the config's folder)."""
    depth = module_name.count(".") + (2 if path.name == "__init__.py" else 1)
    return path.parents[depth - 1]


@contextmanager
def _on_path(folder: Path) -> Iterator[None]:
    """The config's folder on ``sys.path`` while the module runs, so it can import its neighbours."""
    entry = str(folder)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


def _where_raised(exc: BaseException) -> str:
    """``ExcType: message (file.py, line N)``: the innermost frame in the user's code."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({Path(exc.filename or '?').name}, line {exc.lineno})"
    if isinstance(exc, ModuleNotFoundError) and exc.name is not None and exc.name.split(".")[0] == "litellm":
        return (f"{exc} ({_user_frame(exc)}); import CustomLogger from app.custom_logger, and "
                "'from app import custom_logger as litellm' for litellm.completion_cost")
    return f"{type(exc).__name__}: {exc} ({_user_frame(exc)})"


def _user_frame(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "importlib" not in f.filename and not f.filename.startswith("<frozen")]
    return f"{Path(frames[-1].filename).name}, line {frames[-1].lineno}" if frames else "?"


def _origin(module: ModuleType) -> str:
    file = getattr(module, "__file__", None)
    return Path(file).name if file else module.__name__
