"""What the gateway keeps of an error object an upstream sends: the body of a 4xx/5xx answer, or
``data: {"error": ...}`` in the middle of a stream. Every field of it is text the upstream chose,
and each reaches the client's JSON, the span (so every failure destination) and ``/metrics``: a
provider that echoes the key it was sent puts it in any of them (``"code": "code-sk-..."``).

- ``message``: cut to ``MAX_MESSAGE_CHARS`` *before* it is scrubbed. Scrubbing is linear but runs in
  Python on the event loop: a 30 MB message held every call for 4.7 s, and went out whole.
- ``type`` and ``code``: kept only when they are short token-like words (``invalid_api_key``,
  Azure's ``DeploymentNotFound``, ``429``) that scrubbing leaves unchanged; otherwise the gateway's own.
- ``param``: kept only when it is a short parameter path (``messages[0].content``) scrubbing leaves alone.
- the ``/metrics`` label (``metric_label``): the code only when it is one of OpenAI's documented
  words below, else ``upstream_http_<status>``. A vetted word is still the upstream's choice, and an
  upstream that invents a new one per call would add a series per call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_MESSAGE_CHARS = 2000
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,47}")
_PARAM = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,128}")
# OpenAI's error codes and types (platform.openai.com/docs/guides/error-codes and the API reference)
# and Azure OpenAI's additions: what an operator's dashboard tells apart.
KNOWN_CODES = frozenset({
    "invalid_api_key", "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
    "rate_limit_exceeded", "rate_limit_error", "insufficient_quota", "context_length_exceeded", "model_not_found",
    "server_error", "api_error", "timeout", "content_filter", "content_policy_violation", "invalid_value",
    "invalid_type", "missing_required_parameter", "unknown_parameter", "unsupported_parameter",
    "unsupported_value", "invalid_organization", "unsupported_country_region_territory",
    "string_above_max_length", "model_decommissioned", "DeploymentNotFound",
})


@dataclass(frozen=True, slots=True)
class UpstreamErrorFields:
    """An upstream error object as the gateway may pass it on; ``None``: absent or not acceptable."""

    message: str
    type: str | None
    code: str | None
    param: str | None


def read_error(error: Any, scrub: Callable[[str], str]) -> UpstreamErrorFields:
    """The fields of ``error`` (an OpenAI error object, or a bare string), each bounded and scrubbed."""
    if isinstance(error, str):
        return UpstreamErrorFields(scrub(error[:MAX_MESSAGE_CHARS]), None, None, None)
    if not isinstance(error, dict):
        return UpstreamErrorFields("", None, None, None)
    message = error.get("message")
    message = message if isinstance(message, str) else ""
    return UpstreamErrorFields(scrub(message[:MAX_MESSAGE_CHARS]), _vetted(error.get("type"), _WORD, scrub),
                               _vetted(error.get("code"), _WORD, scrub), _vetted(error.get("param"), _PARAM, scrub))


def _vetted(value: Any, shape: re.Pattern[str], scrub: Callable[[str], str]) -> str | None:
    if type(value) is int and 0 <= value < 1000:  # a status-like number (vLLM, Azure send 400, 429)
        return str(value)
    if isinstance(value, str) and shape.fullmatch(value) and scrub(value) == value:
        return value
    return None


def metric_label(code: str | None, status: int) -> str:
    return code if code in KNOWN_CODES else f"upstream_http_{status}"
