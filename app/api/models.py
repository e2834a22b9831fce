"""The OpenAI-compatible routes Litestar serves: ``/v1/models``. The POST routes (chat, completions,
embeddings) are the hot path and are served in plain ASGI by ``app.gateway.front``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Request, get
from litestar.handlers import BaseRouteHandler

from app.calls.caller import Caller
from app.teams.auth import bearer_token

if TYPE_CHECKING:
    from app.server.factory import Gateway


def caller_of(gateway: Gateway, request: Request[Any, Any, Any]) -> Caller:
    headers = request.headers
    return gateway.auth.authenticate(bearer_token(headers))


def llm_routes(gateway: Gateway) -> list[BaseRouteHandler]:
    @get(["/v1/models", "/models"], include_in_schema=False)
    async def models(request: Request[Any, Any, Any]) -> dict[str, Any]:
        caller = caller_of(gateway, request)
        names = [n for n in gateway.config.model_names if caller.may_use(n)]
        return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "spangate"}
                                           for n in names]}

    return [models]
