"""Small checks for decoded JSON that name the faulty value by its JSON path (``tools[0].function.name``).

Each check is ``check(value, param)`` and raises ``InvalidRequest`` (a 400 in OpenAI's error JSON)
with OpenAI's wording and codes: ``invalid_type``, ``invalid_value``, ``missing_required_parameter``.
Type tests use ``type(v) is ...``: JSON decodes to exact types, and a bool is never a count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from app.errors import InvalidRequest

INT64_MAX = 2**63 - 1  # span attributes are int64 on the wire (OTLP)

Check = Callable[[Any, str], None]
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "an array",
               dict: "an object", type(None): "null"}


# --- errors -------------------------------------------------------------------------------------


def wrong_type(param: str, expected: str, value: Any) -> InvalidRequest:
    got = _TYPE_NAMES.get(type(value), type(value).__name__)
    return InvalidRequest(f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
                          param=param, code="invalid_type")


def invalid_value(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid value for '{param}': {message}", param=param, code="invalid_value")


def missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


# --- checks ------------------------------------------------------------------------------


def shown(value: Any) -> str:
    """A value quoted in an error message: short, whatever the client sent (4000-digit ints too)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def is_int(value: Any) -> bool:
    return type(value) is int  # bool is a subclass of int, never a count


def is_number(value: Any) -> bool:
    return type(value) is float or type(value) is int


def integer(low: int, high: int = INT64_MAX) -> Check:
    def check(value: Any, param: str) -> None:
        if not is_int(value):
            raise wrong_type(param, "an integer", value)
        if not low <= value <= high:
            raise invalid_value(param, f"expected an integer from {low} to {high}, got {shown(value)}.")
    return check


def number(low: float, high: float) -> Check:
    def check(value: Any, param: str) -> None:
        if not is_number(value):
            raise wrong_type(param, "a number", value)
        if not low <= value <= high:
            raise invalid_value(param, f"expected a number from {low} to {high}, got {shown(value)}.")
    return check


def of_type(kind: type, expected: str) -> Check:
    def check(value: Any, param: str) -> None:
        if type(value) is not kind:
            raise wrong_type(param, expected, value)
    return check


def one_of(*allowed: str) -> Check:
    def check(value: Any, param: str) -> None:
        if type(value) is not str:
            raise wrong_type(param, "a string", value)
        if value not in allowed:
            raise invalid_value(param, f"expected one of {', '.join(allowed)}, got {shown(value)}.")
    return check


string = of_type(str, "a string")
boolean = of_type(bool, "a boolean")
obj = of_type(dict, "an object")


def field(container: Mapping[str, Any], name: str, param: str, check: Check) -> None:
    """A required field of a nested object."""
    if name not in container:
        raise missing(f"{param}.{name}")
    check(container[name], f"{param}.{name}")


def optional(container: Mapping[str, Any], name: str, param: str, check: Check) -> None:
    value = container.get(name)
    if value is not None:
        check(value, f"{param}.{name}")


def list_of(item: Check, *, min_items: int = 0, max_items: int | None = None, expected: str = "an array") -> Check:
    def check(value: Any, param: str) -> None:
        if type(value) is not list:
            raise wrong_type(param, expected, value)
        if len(value) < min_items:
            raise invalid_value(param, f"expected at least {min_items} item(s), got {len(value)}.")
        if max_items is not None and len(value) > max_items:
            raise invalid_value(param, f"expected at most {max_items} item(s), got {len(value)}.")
        for i, entry in enumerate(value):
            item(entry, f"{param}[{i}]")
    return check
