"""Client dialects: other request shapes served as chat calls (``base.ClientDialect``).

``routes()`` is the front door's table of dialect paths (with and without ``/v1``): a dialect's
calls, and the local routes it answers without a call (Anthropic's ``count_tokens``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.dialects.base import ClientDialect, DialectStream
from app.dialects.messages import MessagesDialect, count_tokens
from app.dialects.responses import ResponsesDialect
from app.gateway.front import DialectRoute

__all__ = ["ClientDialect", "DialectStream", "routes"]

# path (without /v1) -> the route; each dialect module adds its own paths here.
_ROUTES: dict[str, Callable[[], DialectRoute]] = {
    # Claude Code sends its key as x-api-key (ANTHROPIC_API_KEY) or as a bearer token (ANTHROPIC_AUTH_TOKEN).
    "/messages": lambda: DialectRoute(MessagesDialect(), key_header="x-api-key"),
    "/messages/count_tokens": lambda: DialectRoute(MessagesDialect(), key_header="x-api-key", local=count_tokens),
    "/responses": lambda: DialectRoute(ResponsesDialect()),  # the OpenAI SDK sends its key as a bearer token
}


def routes() -> dict[str, Any]:
    table: dict[str, DialectRoute] = {}
    for path, make in _ROUTES.items():
        table["/v1" + path] = table[path] = make()
    return table
