"""Config values that end up on the upstream wire (request line, headers, proxy), checked at start-up.

A line break from an environment variable would inject headers, or end the head early and turn the
body into a second request on a connection every team shares; these checks stop start-up with one
line naming the key instead (``model_list[2].litellm_params.api_key: contains a line break``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from app.config.keys import ConfigError

_CTL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # what may never reach a header (HTAB is allowed)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_API_VERSION = re.compile(r"[A-Za-z0-9._-]+")


def check_wire_values(params: Mapping[str, Any], headers: Any, azure_deployment: str | None, where: str) -> None:
    """Values that end up in the upstream request line or headers: a line break from an environment
    variable would inject headers, or end the head early and turn the body into a second request."""
    at = f"{where}.litellm_params"
    if isinstance(params.get("api_key"), str):
        header_safe(params["api_key"], f"{at}.api_key")
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            if not _TOKEN.fullmatch(str(name)):
                raise ConfigError(f"{at}.extra_headers: {str(name)[:40]!r} is not a valid header name")
            header_safe(str(value), f"{at}.extra_headers.{name}")
    version = params.get("api_version")
    if version is not None and not _API_VERSION.fullmatch(str(version)):
        raise ConfigError(f"{at}.api_version: expected a version such as 2024-10-21 (letters, digits, . _ -)")
    base = params.get("api_base") or params.get("base_url")
    if isinstance(base, str):
        header_safe(base, f"{at}.api_base")
        try:
            url = httpx.URL(base)
        except httpx.InvalidURL as exc:
            raise ConfigError(f"{at}.api_base: not a valid URL ({exc})") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(f"{at}.api_base: expected an http:// or https:// URL with a host")
        if url.query or url.fragment:
            raise ConfigError(f"{at}.api_base: a base URL takes no query or fragment")
    if azure_deployment is not None and not _API_VERSION.fullmatch(azure_deployment):
        raise ConfigError(f"{at}.model: the Azure deployment name may hold only letters, digits, . _ -")


def proxy_url(value: Any, where: str) -> str | None:
    if value is None or value == "direct":
        return value
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a proxy URL or 'direct'")
    url = value
    header_safe(url, where)
    try:
        parsed = httpx.URL(url if "://" in url else f"http://{url}")
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        # The message never repeats the URL: it may hold a password.
        raise ConfigError(f"{where}: expected an http:// or https:// proxy URL with a host, "
                          "or 'direct' to ignore HTTP(S)_PROXY")
    return url


def header_safe(value: str, where: str) -> None:
    bad = _CTL.search(value)
    if bad:
        what = "a line break" if bad.group() in "\r\n" else "a NUL character" if bad.group() == "\0" else \
            "a control character"
        raise ConfigError(f"{where}: contains {what}")
