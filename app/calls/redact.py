"""Scrubbing secrets out of text that leaves the gateway (upstream error messages, mostly).

Known secrets go first, literally and in fragments: a pattern only knows what keys usually look
like, and when it runs first it can cut a key in two and leave the part it did not match in clear
(``Bearer ***+tail/SECRET~zz``). Fragments matter because upstreams echo keys partially
(``sk-proj-ab***wxyz``): any run of at least ``FRAGMENT`` characters copied from a known secret is
replaced. Shorter runs are not: 7 characters of a random key say nothing usable, and matching them
would start eating ordinary words. The key-shaped patterns run last, for keys we were never told.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit

MASK = "***"
FRAGMENT = 8
# Characters keys are made of: base64 (standard and URL-safe), hex, and the separators providers use.
_KEY_CHARS = r"[A-Za-z0-9_\-*.+/~=]"
_KEY_PATTERN = re.compile(rf"(sk-|key-|Bearer\s+|Basic\s+){_KEY_CHARS}{{4,}}")


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every known secret (whole or a fragment of it) and every key-shaped word masked."""
    hidden = bytearray(len(text))
    for secret in secrets:
        if secret:
            _mark(text, secret, hidden)
    if any(hidden):
        text = _replace_marked(text, hidden)
    return _KEY_PATTERN.sub(lambda match: match.group(1) + MASK, text)


def _mark(text: str, secret: str, hidden: bytearray) -> None:
    size = min(FRAGMENT, len(secret))
    windows = {secret[i:i + size] for i in range(len(secret) - size + 1)}
    for start in range(len(text) - size + 1):
        if text[start:start + size] in windows:
            hidden[start:start + size] = b"\x01" * size


def _replace_marked(text: str, hidden: bytearray) -> str:
    out: list[str] = []
    masking = False
    for char, flag in zip(text, hidden, strict=True):
        if flag and not masking:
            out.append(MASK)
        elif not flag:
            out.append(char)
        masking = bool(flag)
    return "".join(out)


def deployment_secrets(api_key: str | None, headers: Mapping[str, str], api_base: str | None = None,
                       credentials: Iterable[str] = ()) -> tuple[str, ...]:
    """What of a deployment's config must never be echoed: its key, its configured header values and
    the credentials of its ``api_base`` (``https://user:password@host``).

    Every header value counts (``extra_headers`` is where Azure ``api-key``s, gateway tokens and
    the like are configured), except short ones, which are names rather than credentials; the same
    goes for the user and password of a URL (some servers take a token as the user alone).
    """
    values = [api_key] if api_key else []
    values += [v for v in (*headers.values(), *url_credentials(api_base)) if len(v) >= FRAGMENT]
    values += [v for v in credentials if v]  # a native provider's own (AWS secret key, OAuth token...)
    return tuple(values)


def url_credentials(url: str | None) -> tuple[str, ...]:
    """The user and password of ``url``'s userinfo, as written and percent-decoded."""
    userinfo = _userinfo(url) if url else ""
    words = [w for w in userinfo.split(":", 1) if w] if userinfo else []
    return tuple(dict.fromkeys(form for w in words for form in (w, unquote(w))))


def masked_url(url: str) -> str:
    """``url`` with its userinfo masked (``https://***@host/v1``): the host stays, to say where it went."""
    userinfo = _userinfo(url)
    return url.replace(userinfo + "@", MASK + "@", 1) if userinfo else url


def _userinfo(url: str) -> str:
    netloc = urlsplit(url).netloc
    return netloc.rpartition("@")[0]
