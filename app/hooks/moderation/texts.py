"""What text a call's request and answer carry, and how a long text is cut for the service.

Pure functions: no client, no settings. The messages of one request are checked as one text
(joined by blank lines) rather than one request per message: fewer calls, and a message is read in
the context of the ones around it.

Everything the model reads or writes is text to check, not only ``content``: a message's every string
(its ``name``, ``refusal``, parts of any type, ``input_text`` and other types the gateway does not
know included, an assistant's ``tool_calls`` arguments, a ``file`` part's name and, when it decodes
as UTF-8, its data), the ``tools`` and ``functions`` (names, descriptions and their parameter schemas,
property names included), ``response_format`` (a JSON schema's descriptions), ``prediction`` and a
completion's ``suffix``; on the answer, every string of each choice's message or delta
(``reasoning_content``, ``refusal``, ``tool_calls`` arguments). Structure is skipped (``role``,
``type``, ids) and so is what is not text to ``text:analyze``: images, audio, binary files.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from itertools import chain
from typing import Any
from urllib.parse import unquote_to_bytes

from contracts import semconv as sc

MAX_TEXT_CHARS = 10_000  # the service's limit per request, in code points (a Python str's len)
_SEPARATOR = "\n\n"
# A cut on whitespace is wanted, but not at any price: a part shorter than this is cut hard instead.
_MIN_PART = MAX_TEXT_CHARS // 2
# Keys whose values are structure, references or media, never text the model reads as words.
_REQUEST_SKIP = frozenset({"role", "type", "id", "tool_call_id", "image_url", "input_audio", "audio", "file_id",
                           "cache_control", "detail"})
_ANSWER_SKIP = frozenset({"role", "type", "id", "index", "data", "expires_at"})  # ``audio.data``: base64 sound
# JSON-schema keywords whose keys are names the author chose (property names), read by the model too.
_NAMED = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
_REQUEST_FIELDS = ("tools", "functions", "response_format", "prediction")


def request_text(operation: str, request: Mapping[str, Any] | None) -> str:
    """Chat: every message's strings, then the tools, functions, response format and prediction;
    embeddings: the input strings; text completion: the prompt strings and the suffix. Token-id
    inputs carry no text to check."""
    if not request:
        return ""
    if operation == sc.OP_CHAT:
        messages = request.get("messages")
        texts = chain(_each(messages if isinstance(messages, list) else ()),
                      _each(request.get(name) for name in _REQUEST_FIELDS))
        return _join(texts)
    if operation == sc.OP_EMBEDDINGS:
        return _join(_strings(request.get("input")))
    suffix = request.get("suffix")
    return _join(chain(_strings(request.get("prompt")), (suffix,) if isinstance(suffix, str) else ()))


def response_text(operation: str, response: Mapping[str, Any] | None) -> str:
    """The answer's text, every choice: a chat message's strings, a completion's text. Embeddings: none."""
    if not response or operation == sc.OP_EMBEDDINGS:
        return ""
    choices = response.get("choices")
    if not isinstance(choices, list):
        return ""
    if operation == sc.OP_CHAT:
        return _join(message_text(c.get("message"), _SEPARATOR) for c in choices if isinstance(c, Mapping))
    return _join(c.get("text") if isinstance(c.get("text"), str) else "" for c in choices if isinstance(c, Mapping))


def message_text(message: Any, separator: str = "") -> str:
    """Every string of an answer's message or a stream's delta (content, reasoning, refusal, tool
    call names and arguments), joined by ``separator`` ("" for a delta, whose pieces are parts of words)."""
    return separator.join(t for t in walk(message, _ANSWER_SKIP) if t)


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


def walk(value: Any, skip: frozenset[str] = frozenset()) -> Iterator[str]:
    """Every string in ``value``, in document order, but those under a key in ``skip``; a ``file_data``
    string as the text it encodes. Iterative: a request nested thousands deep is no recursion error."""
    stack: list[Iterator[Any]] = [iter((value,))]
    while stack:
        for item in stack[-1]:
            if isinstance(item, str):
                yield item
            elif isinstance(item, Mapping):
                stack.append(_children(item, skip))
                break
            elif isinstance(item, list | tuple):
                stack.append(iter(item))
                break
        else:
            stack.pop()


def _children(mapping: Mapping[Any, Any], skip: frozenset[str]) -> Iterator[Any]:
    for key, value in mapping.items():
        if key in skip:
            continue
        if key == "file_data" and isinstance(value, str):
            yield file_text(value)
        elif key in _NAMED and isinstance(value, Mapping):
            for name, schema in value.items():
                yield name
                yield schema
        else:
            yield value


def file_text(data: str) -> str:
    """A ``file`` part's data as the text it carries. A ``data:`` URL: its bytes when they are UTF-8
    (or its media type says text); a binary file (a PDF, an image) is not text the service reads, so
    it gives none, as an image part does. Anything else is not known to be a file, so it is checked
    as it is, unless it is base64 of UTF-8 text."""
    if not data.startswith("data:"):
        try:
            return base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
            return data
    head, _, payload = data.partition(",")
    try:
        raw = base64.b64decode(payload, validate=True) if head.endswith(";base64") else unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        return data
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace") if head[5:].lower().startswith("text/") else ""


def _each(values: Any) -> Iterator[str]:
    """One text per request value (a message, the tools, ...): its strings joined by blank lines."""
    for value in values:
        if value is not None:
            yield _join(walk(value, _REQUEST_SKIP))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        yield from (item for item in value if isinstance(item, str))


def _join(texts: Any) -> str:
    return _SEPARATOR.join(t for t in texts if t)
