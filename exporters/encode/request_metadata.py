"""The request metadata on a gateway span (``spangate.metadata.<key>``), read the same way by every
destination that maps the seed's keys (``generation_name``, ``trace_user_id``, ``tags``, ...) onto
fields of its own. Pure helpers over attribute mappings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from contracts import semconv

__all__ = ["metadata_text", "parse_tags", "pop_metadata"]


def pop_metadata(attributes: dict[str, Any]) -> dict[str, Any]:
    """Remove the ``spangate.metadata.*`` attributes and return them keyed by metadata key."""
    prefix = semconv.METADATA_PREFIX
    keys = [k for k in attributes if k.startswith(prefix) and len(k) > len(prefix)]
    return {k[len(prefix):]: attributes.pop(k) for k in keys}


def metadata_text(value: Any) -> str | None:
    """A metadata value as a non-empty string (non-strings as JSON), or ``None``."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    return text or None


def parse_tags(value: Any) -> list[str]:
    """Tags as stored by the gateway: a JSON array string, a list of strings, or one string."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                return [text]
        else:
            return [text] if text else []
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [tag if isinstance(tag, str) else json.dumps(tag) for tag in value if tag is not None]
    return []
