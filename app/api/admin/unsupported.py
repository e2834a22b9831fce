"""LiteLLM admin fields Spangate does not implement (budgets, rate limits, roles): refused by name.

A 400 rather than a 200 with ``warnings``: most of these fields are limits, and a script that sets
``max_budget`` and reads 200 believes spend is capped. Scripts check the status; few read warnings.
A field sent as null, ``[]`` or ``{}`` asks for nothing and passes (LiteLLM's SDKs send such defaults).
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.errors import InvalidRequest

UNSUPPORTED = "unsupported_field"


def refuse_unimplemented(raw: bytes, struct: type[msgspec.Struct]) -> None:
    """A 400 naming every top-level field of ``raw`` that ``struct`` does not hold and that asks for something."""
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return  # the route's own decoding says what is wrong with it
    if not isinstance(body, dict):
        return
    named = [k for k, v in body.items() if k not in struct.__struct_fields__ and not _empty(v)]
    if named:
        shown = ", ".join(named[:20]) + (f" and {len(named) - 20} more" if len(named) > 20 else "")
        raise InvalidRequest(f"not implemented by Spangate, so not accepted: {shown}; remove them (supported: "
                             f"{', '.join(struct.__struct_fields__)})", param=named[0][:100], code=UNSUPPORTED)


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}
