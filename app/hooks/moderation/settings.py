"""Typed settings of the ``azure_content_safety`` hook, from ``litellm_settings.azure_content_safety_params``
and from a team's override (its ``default_team_settings`` entry or its metadata through the admin API).

Parsed once at start-up (a bad value raises ``ConfigError`` naming the key path, before workers
fork), and once per change of a team's metadata (a bad value there is refused by the admin API).

Decisions, with the reasons the README repeats:

- A category blocks at its threshold and above (``severity >= threshold``), as LiteLLM's hook
  compares, and as Azure's own filters block "medium" at medium: the default 4 blocks Medium and High.
- ``fail_open`` is false by default: an operator turns moderation on to enforce a policy, and a
  gateway that stops enforcing it in silence while the service is down (or the key is wrong from the
  first call) breaks that promise; a 503 is seen at once. Availability first is one setting away.
- ``stream_mode`` is ``window`` by default: the answer is held back in windows of
  ``stream_window_chars`` characters until each is checked, so a blocked stream shows the client
  nothing of the flagged window, the guarantee a complete answer has. ``end`` streams at once and
  checks the assembled answer at the end; a block then only cuts the stream (error event instead
  of ``[DONE]``) after the client has already seen the text.
- ``max_input_chars`` (500,000 by default, about a 128K-token context) refuses a longer input with a
  413 before anything is sent: its 50 parts take seven rounds of ``MAX_PARALLEL`` requests, ~1 s at
  the service's usual 0.1-0.15 s, inside the 2 s deadline. A 4.1 M-character input (410 parts) cannot
  be checked in time: failing open it reached the model unchecked, failing closed it is a 503 that no
  retry cures. An input under the cap that still misses the deadline with parts unsent is a 413 too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx

from app.config.keys import ConfigError
from exporters.plugin import credential

SECTION = "azure_content_safety_params"
WHERE = f"litellm_settings.{SECTION}"
CATEGORIES = ("Hate", "SelfHarm", "Sexual", "Violence")
MIN_SEVERITY, MAX_SEVERITY = 0, 7  # the service's scale (EightSeverityLevels; FourSeverityLevels uses 0, 2, 4, 6)
DEFAULT_THRESHOLD = 4
# The service answers in ~0.1-0.3 s; waiting longer during a brownout adds that wait to every call.
DEFAULT_TIMEOUT = 2.0
DEFAULT_WINDOW_CHARS = 1000
DEFAULT_MAX_INPUT_CHARS = 500_000
OUTPUT_TYPES = ("FourSeverityLevels", "EightSeverityLevels")
_KEYS = ("endpoint", "key", "api_key", "thresholds", "timeout_seconds", "fail_open", "stream_mode",
         "stream_window_chars", "output_type", "max_input_chars")
_TEAM_KEYS = ("thresholds", "exempt")


class StreamMode(StrEnum):
    WINDOW = "window"  # hold each window back until it is checked
    END = "end"  # stream at once, check the assembled answer, cut with an error event


@dataclass(frozen=True, slots=True)
class ContentSafetySettings:
    endpoint: str  # scheme and host (and port), no trailing slash
    key: str = field(repr=False)
    thresholds: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, DEFAULT_THRESHOLD))
    timeout: float = DEFAULT_TIMEOUT
    fail_open: bool = False
    stream_mode: StreamMode = StreamMode.WINDOW
    stream_window_chars: int = DEFAULT_WINDOW_CHARS
    output_type: str = OUTPUT_TYPES[0]
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS


@dataclass(frozen=True, slots=True)
class TeamModeration:
    """A team's override: its thresholds replace the global ones category by category."""

    thresholds: Mapping[str, int] = field(default_factory=dict)
    exempt: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    """The thresholds one call is checked against: the global ones, or a team's merged over them."""

    thresholds: Mapping[str, int]


def parse_settings(raw: Mapping[str, Any] | None, where: str = WHERE) -> ContentSafetySettings:
    if raw is None:
        raise ConfigError(f"{where}: required by litellm_settings.callbacks: azure_content_safety "
                          "(endpoint and key of the Content Safety resource)")
    _known(raw, _KEYS, where)
    if raw.get("key") is not None and raw.get("api_key") is not None:
        raise ConfigError(f"{where}: set key or api_key, not both")
    name = "key" if raw.get("key") is not None else "api_key"
    try:
        key = credential(f"{where}.{name}", raw.get(name))
    except ValueError as exc:
        raise ConfigError(f"{exc}" if raw.get(name) is not None else f"{where}.key: required") from None
    mode = raw.get("stream_mode", StreamMode.WINDOW.value)
    if mode not in tuple(StreamMode):
        raise ConfigError(f"{where}.stream_mode: {mode!r} is not one of {', '.join(StreamMode)}")
    output_type = raw.get("output_type", OUTPUT_TYPES[0])
    if output_type not in OUTPUT_TYPES:
        raise ConfigError(f"{where}.output_type: {output_type!r} is not one of {', '.join(OUTPUT_TYPES)}")
    return ContentSafetySettings(
        endpoint=_endpoint(raw.get("endpoint"), f"{where}.endpoint"),
        key=key,
        thresholds={**dict.fromkeys(CATEGORIES, DEFAULT_THRESHOLD), **parse_thresholds(raw.get("thresholds"),
                                                                                        f"{where}.thresholds")},
        timeout=_seconds(raw.get("timeout_seconds", DEFAULT_TIMEOUT), f"{where}.timeout_seconds"),
        fail_open=_flag(raw.get("fail_open", False), f"{where}.fail_open"),
        stream_mode=StreamMode(mode),
        stream_window_chars=_window(raw.get("stream_window_chars", DEFAULT_WINDOW_CHARS),
                                    f"{where}.stream_window_chars"),
        output_type=output_type,
        max_input_chars=_count(raw.get("max_input_chars", DEFAULT_MAX_INPUT_CHARS), f"{where}.max_input_chars"),
    )


def parse_team(raw: Any, where: str) -> TeamModeration:
    """``{thresholds: {...}, exempt: bool}``, from config or a team's metadata."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping with thresholds and/or exempt")
    _known(raw, _TEAM_KEYS, where)
    return TeamModeration(thresholds=parse_thresholds(raw.get("thresholds"), f"{where}.thresholds"),
                          exempt=_flag(raw.get("exempt", False), f"{where}.exempt"))


def parse_thresholds(raw: Any, where: str) -> dict[str, int]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping of category to severity ({', '.join(CATEGORIES)})")
    out = {}
    for category, value in raw.items():
        if category not in CATEGORIES:
            raise ConfigError(f"{where}.{category}: unknown category; allowed: {', '.join(CATEGORIES)}")
        if isinstance(value, bool) or not isinstance(value, int) or not MIN_SEVERITY <= value <= MAX_SEVERITY:
            raise ConfigError(f"{where}.{category}: {value!r} is outside {MIN_SEVERITY}-{MAX_SEVERITY}, the "
                              "service's severity scale (a category blocks at its threshold and above)")
        out[category] = value
    return out


def _known(raw: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for name in raw:
        if name not in allowed:
            raise ConfigError(f"{where}.{name}: unknown key; allowed: {', '.join(allowed)}")


def _endpoint(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: required, the resource's URL (https://<name>.cognitiveservices.azure.com)")
    try:
        url = httpx.URL(value.strip())
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host or url.query or url.userinfo:
        raise ConfigError(f"{where}: {value[:80]!r} is not an http(s) URL with a host (and no query or credentials)")
    return str(url).rstrip("/")


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{where}: expected a positive number of seconds, got {value!r}")
    return float(value)


def _window(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
        raise ConfigError(f"{where}: expected a whole number of characters from 1 to 10000, got {value!r}")
    return value


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: expected a positive whole number of characters, got {value!r}")
    return value


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value
