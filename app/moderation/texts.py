"""What text a call's request and answer carry, and how a long text is cut for the service.

Pure functions: no client, no settings. The messages of one request are checked as one text
(joined by blank lines) rather than one request per message: fewer calls, and a message is read in
the context of the ones around it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from contracts import semconv as sc

MAX_TEXT_CHARS = 10_000  # the service's limit per request, in code points (a Python str's len)
_SEPARATOR = "\n\n"
# A cut on whitespace is wanted, but not at any price: a part shorter than this is cut hard instead.
_MIN_PART = MAX_TEXT_CHARS // 2


def request_text(operation: str, request: Mapping[str, Any] | None) -> str:
    """Chat: every message's content (strings and ``text`` parts); embeddings: the input strings;
    text completion: the prompt strings. Token-id inputs carry no text to check."""
    if not request:
        return ""
    if operation == sc.OP_CHAT:
        messages = request.get("messages")
        return _join(_content(m.get("content")) for m in messages if isinstance(m, Mapping)) \
            if isinstance(messages, list) else ""
    return _join(_strings(request.get("input" if operation == sc.OP_EMBEDDINGS else "prompt")))


def response_text(operation: str, response: Mapping[str, Any] | None) -> str:
    """The answer's text: chat message contents or completion texts, every choice. Embeddings: none."""
    if not response or operation == sc.OP_EMBEDDINGS:
        return ""
    choices = response.get("choices")
    if not isinstance(choices, list):
        return ""
    if operation == sc.OP_CHAT:
        return _join(_content((c.get("message") or {}).get("content")) for c in choices if isinstance(c, Mapping))
    return _join(c.get("text") if isinstance(c.get("text"), str) else "" for c in choices if isinstance(c, Mapping))


def split_text(text: str, limit: int = MAX_TEXT_CHARS) -> list[str]:
    """Parts of at most ``limit`` characters, each cut after the last whitespace in its span when
    that leaves a part of at least half the limit (a word is not cut in two), else cut hard."""
    parts = []
    start = 0
    while len(text) - start > limit:
        end = start + limit
        cut = _last_space(text, start + max(limit // 2, 1), end)
        end = cut + 1 if cut is not None else end
        parts.append(text[start:end])
        start = end
    if start < len(text) or not parts:
        parts.append(text[start:])
    return parts


def _last_space(text: str, low: int, high: int) -> int | None:
    for i in range(high - 1, low - 1, -1):
        if text[i].isspace():
            return i
    return None


def _content(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return _join(part.get("text") if isinstance(part, Mapping) and part.get("type") == "text"
                     and isinstance(part.get("text"), str) else "" for part in content)
    return ""


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        yield from (item for item in value if isinstance(item, str))


def _join(texts: Any) -> str:
    return _SEPARATOR.join(t for t in texts if t)
