"""The OpenAI-compatible routes. Handlers take the raw request: the body is parsed once, by the
proxy, with msgspec, and forwarded without a model layer in between."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.handlers import BaseRouteHandler

from app import semconv as sc
from app.auth import Caller, bearer_token
from app.errors import PayloadTooLarge
from app.proxy import CallContext

if TYPE_CHECKING:
    from app.server import Gateway


def caller_of(gateway: Gateway, request: Request[Any, Any, Any]) -> Caller:
    headers = request.headers
    return gateway.auth.authenticate(bearer_token(headers.get("authorization"), headers.get("api-key")))


def llm_routes(gateway: Gateway) -> list[BaseRouteHandler]:
    proxy = gateway.proxy

    def route(operation: str, *paths: str) -> BaseRouteHandler:
        async def handler(request: Request[Any, Any, Any]) -> Response[Any]:
            caller = caller_of(gateway, request)
            ctx = CallContext(caller=caller, headers=request.headers,
                              client_ip=request.client.host if request.client else None,
                              capture_content=gateway.teams.capture_content(caller.team_id))
            try:
                raw = await request.body()
            except HTTPException as exc:
                if exc.status_code != 413:
                    raise
                raise proxy.reject(operation, None, ctx, PayloadTooLarge(
                    "request body is larger than general_settings.max_request_body_bytes")) from None
            return await proxy.handle(operation, raw, ctx)

        handler.__name__ = f"{operation}_handler"
        return post(list(paths), status_code=200, include_in_schema=False)(handler)

    @get(["/v1/models", "/models"], include_in_schema=False)
    async def models(request: Request[Any, Any, Any]) -> dict[str, Any]:
        caller = caller_of(gateway, request)
        allowed = caller.models or caller.team_models
        names = [n for n in gateway.config.model_names if not allowed or n in allowed]
        return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "spangate"}
                                           for n in names]}

    return [
        route(sc.OP_CHAT, "/v1/chat/completions", "/chat/completions"),
        route(sc.OP_TEXT_COMPLETION, "/v1/completions", "/completions"),
        route(sc.OP_EMBEDDINGS, "/v1/embeddings", "/embeddings"),
        models,
    ]
