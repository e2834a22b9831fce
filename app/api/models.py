"""The OpenAI-compatible routes Litestar serves: ``/v1/models``. The POST routes (chat, completions,
embeddings) are the hot path and are served in plain ASGI by ``app.gateway.front``."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.handlers import BaseRouteHandler

from app.api.services import ApiSettings
from app.calls.caller import Caller
from app.teams.auth import Authenticator, bearer_token


def caller_of(auth: Authenticator, request: Request[Any, Any, Any]) -> Caller:
    headers = request.headers
    return auth.authenticate(bearer_token(headers))


@get(["/v1/models", "/models"], include_in_schema=False)
async def models(request: Request[Any, Any, Any], auth: NamedDependency[Authenticator],
                 settings: NamedDependency[ApiSettings]) -> dict[str, Any]:
    caller = caller_of(auth, request)
    names = [n for n in settings.model_names if caller.may_use(n)]
    return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "spangate"}
                                       for n in names]}


def llm_routes() -> list[BaseRouteHandler]:
    return [models]
