"""One reader per kind of YAML value, shared by every section: each returns the typed value or raises
``ConfigError`` naming the key path (``where``) and what is allowed, never the value's secret part."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from app.config.keys import ConfigError


def as_mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {kind_of(value)}")
    return value


def as_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list, got {kind_of(value)}")
    return value


def as_names(value: Any, where: str) -> tuple[str, ...]:
    """A list of names, or one name alone (LiteLLM accepts ``success_callback: file``)."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    items = as_list(value, where)
    return tuple(as_str(v, f"{where}[{i}]") for i, v in enumerate(items))


def dedupe(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def as_str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string, got {kind_of(value)}")
    return value


def as_opt_str(value: Any, where: str) -> str | None:
    return None if value is None else as_str(str(value) if isinstance(value, int | float) else value, where)


def as_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise ConfigError(f"{where}: expected true or false, got {kind_of(value)}")


def as_float(value: Any, where: str) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a number, got {kind_of(value)}") from None
    if result < 0:
        raise ConfigError(f"{where}: must not be negative, got {result}")
    return result


def as_positive(value: Any, where: str) -> float:
    result = as_float(value, where)
    if result == 0:
        raise ConfigError(f"{where}: must be more than 0 seconds")
    return result


def as_int(value: Any, where: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{where}: expected a whole number >= {minimum}, got {kind_of(value)}")
    try:
        result = int(value)
    except ValueError:
        raise ConfigError(f"{where}: expected a whole number >= {minimum}, got {value!r}") from None
    if result < minimum:
        raise ConfigError(f"{where}: expected a whole number >= {minimum}, got {result}")
    return result


def as_path(value: Any, where: str, base_dir: Path) -> Path | None:
    """A path as written, relative ones taken from the config file's folder."""
    if value is None:
        return None
    path = Path(as_str(value, where)).expanduser()
    return path if path.is_absolute() else base_dir / path


def kind_of(value: Any) -> str:
    """What a bad value was, for the message: its type, or a string's first 40 characters."""
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return type(value).__name__
