"""Tool call ids for Gemini's function calls, which come without one.

The id is stable (the same answer gives the same ids) and carries the call's thought signature:
Gemini 2.5+ models sign their function calls and want the signature back with the call in the next
turn (else a 400, or ``MISSING_THOUGHT_SIGNATURE``). OpenAI clients echo tool call ids as they got
them, so the id is where it survives the round trip.
"""

from __future__ import annotations

import hashlib

_SIGNED = "__ts_"


def call_id(response_id: str, candidate: int, k: int, signature: str | None = None) -> str:
    digest = hashlib.sha256(f"{response_id}/{candidate}/{k}".encode()).hexdigest()[:24]
    return f"call_{digest}{_SIGNED}{signature}" if signature else f"call_{digest}"


def split_call_id(value: str) -> tuple[str, str | None]:
    """``(id, thought signature or None)``."""
    base, sep, signature = value.partition(_SIGNED)
    return base, (signature or None) if sep else None
