"""A call record in the shapes LiteLLM handlers read: ``kwargs``, ``response_obj``, the caller and ``data``.

Pure functions of a ``CallRecord``. The logging methods get the record's ``logged()`` view, so
with content capture off the messages and answer are already gone and headers are masked; the
proxy hooks (pre-call, moderation, post-call success) act on the request itself and get the
client's content, with headers masked all the same.
"""

from __future__ import annotations

import copy
import traceback
from datetime import datetime
from typing import Any

from app.calls.record import REDACTED, CallRecord
from app.calls.redact import masked_url
from app.custom_logger import ResponseObject, UserAPIKeyAuth
from contracts.semconv import OP_CHAT, OP_EMBEDDINGS, OP_TEXT_COMPLETION

# kwargs["call_type"], as LiteLLM's proxy (async client) names them ...
LOGGED_CALL_TYPES = {OP_CHAT: "acompletion", OP_TEXT_COMPLETION: "atext_completion", OP_EMBEDDINGS: "aembedding"}
# ... and the call_type argument of the proxy hooks.
HOOK_CALL_TYPES = {OP_CHAT: "completion", OP_TEXT_COMPLETION: "text_completion", OP_EMBEDDINGS: "embeddings"}
_INPUT_FIELDS = ("model", "messages", "input", "prompt", "user", "stream", "metadata")


def when(timestamp: float | None) -> datetime:
    """LiteLLM hands handlers naive local datetimes (``datetime.now()``); so does this."""
    return datetime.fromtimestamp(timestamp) if timestamp is not None else datetime.now()


def call_kwargs(call: CallRecord) -> dict[str, Any]:
    """``kwargs`` for the logging methods; ``call`` should be the ``logged()`` view."""
    request = call.request or {}
    kwargs: dict[str, Any] = {
        "model": call.model or request.get("model"),
        "messages": request.get("messages", request.get("prompt")),
        "input": request.get("input", request.get("messages", request.get("prompt"))),
        "user": request.get("user"),
        "stream": call.stream,
        "call_type": LOGGED_CALL_TYPES.get(call.operation, call.operation),
        "optional_params": {k: v for k, v in request.items() if k not in _INPUT_FIELDS},
        "litellm_params": {
            "metadata": proxy_metadata(call),
            "proxy_server_request": server_request(call),
            "model_info": model_info(call),
            "api_base": _api_base(call),
        },
        "response_cost": call.cost,
        "start_time": when(call.start_time),
        "end_time": when(call.end_time),
        "standard_logging_object": None,
    }
    if call.error is not None:
        exc = call.exception or call.error
        if call.capture_content:
            kwargs["exception"] = exc
            kwargs["traceback_exception"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        else:  # an upstream's error message may quote the prompt: the type, status and frames only
            kwargs["exception"] = _withheld(exc)
            kwargs["traceback_exception"] = "".join(traceback.format_tb(exc.__traceback__)) + (
                f"{type(exc).__name__}: {WITHHELD}\n")
    return kwargs


WITHHELD = "(message withheld: message logging is off for this call)"


def _withheld(exc: BaseException) -> BaseException:
    """A copy of ``exc`` whose message says it was withheld; its type, status and code stay, so
    handlers that branch on them still can. An exception that cannot be copied becomes a plain
    ``Exception`` named after its type."""
    try:
        shown = copy.copy(exc)
        shown.args = (WITHHELD,)
        if hasattr(shown, "message"):
            shown.message = WITHHELD
    except Exception:
        return Exception(f"{type(exc).__name__}: {WITHHELD}")
    return shown


def proxy_metadata(call: CallRecord) -> dict[str, Any]:
    """``litellm_params.metadata``: the request's own metadata plus who called and what answered."""
    caller = call.caller
    config = _deployment_config(call)
    return {
        **copy.deepcopy(call.metadata),
        "headers": call.logged_headers(),
        "user_api_key": caller.key_hash,  # the hash: LiteLLM also logs the hashed key here
        "user_api_key_alias": caller.key_alias,
        "user_api_key_team_id": caller.team_id,
        "user_api_key_team_alias": caller.team_alias,
        "model_group": call.model,
        "deployment": f"{config.provider}/{config.upstream_model}" if config is not None else None,
    }


def server_request(call: CallRecord) -> dict[str, Any]:
    headers = call.logged_headers()
    scheme = headers.get("x-forwarded-proto", "http")
    host = headers.get("host", "localhost")
    body = dict(call.request or {})
    if call.metadata:
        body["metadata"] = copy.deepcopy(call.metadata)
    return {"url": f"{scheme}://{host}{call.path}", "method": "POST", "headers": headers, "body": body}


def model_info(call: CallRecord) -> dict[str, Any]:
    config = _deployment_config(call)
    if config is None:
        return {}
    return {"id": config.deployment_id, **copy.deepcopy(dict(config.model_info))}


def response_object(call: CallRecord) -> ResponseObject | None:
    """The whole answer (a stream assembled), usage filled in from the record when the body lacks it,
    and the call's cost where ``completion_cost`` looks for it."""
    if call.response is None:
        return None
    body = dict(call.response)
    if call.usage is not None and "usage" not in body:
        body["usage"] = call.usage
    config = _deployment_config(call)
    hidden = {"response_cost": call.cost, "model_id": getattr(config, "deployment_id", None),
              "api_base": _api_base(call)}
    return ResponseObject(body, hidden)


def chunk_object(call: CallRecord, chunk: dict[str, Any]) -> ResponseObject:
    """One stream chunk for ``log_stream_event``; its content removed when the call may not log it."""
    if call.capture_content:
        return ResponseObject(chunk)
    out = {k: v for k, v in chunk.items() if k != "choices"}
    choices = chunk.get("choices")
    if isinstance(choices, list):
        out["choices"] = [{"index": c.get("index", i), "finish_reason": c.get("finish_reason"),
                           "delta": {"role": (c.get("delta") or {}).get("role", "assistant"), "content": REDACTED}}
                          if isinstance(c, dict) else REDACTED for i, c in enumerate(choices)]
    return ResponseObject(out)


def api_key_auth(call: CallRecord) -> UserAPIKeyAuth:
    caller = call.caller
    return UserAPIKeyAuth(api_key=caller.key_hash, key_alias=caller.key_alias, team_id=caller.team_id,
                          team_alias=caller.team_alias, models=sorted(caller.models))


def hook_data(call: CallRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    """``data`` for the proxy hooks: the request (a copy) with ``metadata`` holding the client's
    metadata and what LiteLLM adds there; also returns the added part, to take back out."""
    added = {k: v for k, v in proxy_metadata(call).items() if k not in call.metadata}
    data = copy.deepcopy(call.request or {})
    data["metadata"] = {**copy.deepcopy(call.metadata), **added}
    data["proxy_server_request"] = server_request(call)
    return data, added


def _deployment_config(call: CallRecord) -> Any:
    return getattr(call.deployment, "config", None)


def _api_base(call: CallRecord) -> str | None:
    """Where the call went, its ``user:password@`` masked: a callback is a destination like any other."""
    base = getattr(_deployment_config(call), "api_base", None)
    return masked_url(base) if isinstance(base, str) else None
