"""Typed settings of the generic webhook: where to POST, with which headers, in which framing.

Team form (``callback_vars``): ``generic_logger_endpoint`` (required), ``generic_logger_headers``
(secret: headers usually carry a token; ``k=v,k2=v2`` as in ``GENERIC_LOGGER_HEADERS``, or a JSON
object) and ``generic_logger_format``. Global form: the same from ``GENERIC_LOGGER_ENDPOINT``,
``GENERIC_LOGGER_HEADERS`` and ``GENERIC_LOGGER_FORMAT``. Errors name the var (and a header's name),
never a value: a value may be the token.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from exporters.plugin import check_vars
from exporters.transport.urlpolicy import normalize_base_url

__all__ = ["ALLOWED_VARS", "ENDPOINT_VAR", "ENV_VARS", "SECRET_VARS", "GenericConfig", "LogFormat"]

ENDPOINT_VAR: Final = "generic_logger_endpoint"
HEADERS_VAR: Final = "generic_logger_headers"
FORMAT_VAR: Final = "generic_logger_format"
ALLOWED_VARS: Final = (ENDPOINT_VAR, HEADERS_VAR, FORMAT_VAR)
SECRET_VARS: Final = frozenset({HEADERS_VAR})
ENV_VARS: Final = {ENDPOINT_VAR: "GENERIC_LOGGER_ENDPOINT", HEADERS_VAR: "GENERIC_LOGGER_HEADERS",
                   FORMAT_VAR: "GENERIC_LOGGER_FORMAT"}

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)
# The exporter frames the body itself; a caller's value for these would corrupt or mislabel it.
_RESERVED = frozenset({"content-type", "content-length", "content-encoding", "transfer-encoding", "host",
                       "connection", "idempotency-key"})


class LogFormat(enum.Enum):
    """``single``: one POST per call, the seed's ``{"data": {...}}`` (LiteLLM's form). ``json_array``:
    one POST per batch, a JSON array of those objects. ``ndjson``: one POST per batch, one per line."""

    SINGLE = "single"
    JSON_ARRAY = "json_array"
    NDJSON = "ndjson"


@dataclass(frozen=True, slots=True)
class GenericConfig:
    endpoint: str
    headers: Mapping[str, str] | tuple[tuple[str, str], ...] = ()  # kept as sorted pairs: hashable, immutable
    format: LogFormat = LogFormat.SINGLE

    def __post_init__(self) -> None:
        pairs = self.headers.items() if isinstance(self.headers, Mapping) else self.headers
        object.__setattr__(self, "headers", tuple(sorted(pairs)))

    def __repr__(self) -> str:  # header values are secrets; their names are not
        return (f"GenericConfig(endpoint={self.endpoint!r}, headers={[name for name, _ in self.headers]!r}, "
                f"format={self.format.value!r})")

    @classmethod
    def from_vars(cls, vars: Mapping[str, Any]) -> GenericConfig:
        check_vars("generic", vars, ALLOWED_VARS, (ENDPOINT_VAR,))
        return cls(endpoint=endpoint_url(vars[ENDPOINT_VAR]), headers=parse_headers(vars.get(HEADERS_VAR)),
                   format=_format(vars.get(FORMAT_VAR)))


def endpoint_url(value: Any) -> str:
    """The normalised endpoint. Unlike a base URL nothing is appended to it, so a trailing ``/`` is kept
    (some servers answer ``/hook`` and ``/hook/`` differently). A query is refused like a base URL's: a
    token in it would be a secret in a var that is neither encrypted nor masked; send it as a header."""
    url = normalize_base_url(value, ENDPOINT_VAR)
    return url + "/" if urlsplit(value.strip()).path.endswith("/") else url


def parse_headers(value: Any) -> dict[str, str]:
    """``k=v,k2=v2`` (the ``GENERIC_LOGGER_HEADERS`` form) or a mapping of strings."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        pairs = []
        for item in value.split(","):
            if not item.strip():
                continue
            name, sep, text = item.partition("=")
            if not sep:
                raise ValueError(f"{HEADERS_VAR} must be name=value pairs separated by commas")
            pairs.append((name, text))
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        raise ValueError(f"{HEADERS_VAR} must be a 'k=v,k2=v2' string or an object, not {type(value).__name__}")
    return dict(_header(name, text) for name, text in pairs)


def _header(name: Any, value: Any) -> tuple[str, str]:
    if not isinstance(name, str) or not _TOKEN.fullmatch(name.strip()):
        raise ValueError(f"{HEADERS_VAR} has an invalid header name")
    name = name.strip()
    if name.lower() in _RESERVED:
        raise ValueError(f"{HEADERS_VAR}: header {name!r} is set by the gateway and cannot be given")
    if not isinstance(value, str) or any(not ch.isprintable() for ch in value):
        raise ValueError(f"{HEADERS_VAR}: header {name!r} must have a string value without control characters")
    return name, value.strip()


def _format(value: Any) -> LogFormat:
    if value is None:
        return LogFormat.SINGLE
    try:
        return LogFormat(value.strip().lower() if isinstance(value, str) else value)
    except ValueError:
        allowed = ", ".join(f.value for f in LogFormat)
        raise ValueError(f"{FORMAT_VAR} must be one of {allowed}") from None
