"""An OpenAI chat completion -> an OpenAI Response object (platform.openai.com/docs/api-reference/responses/object).

The chat answer's message becomes output items: its reasoning (``reasoning_content``) a ``reasoning`` item,
its text (and refusal) one ``message`` item, each tool call
a ``function_call`` item after it, as OpenAI orders them. ``finish_reason`` ``length`` is an ``incomplete``
response (reason ``max_output_tokens``), ``content_filter`` one with reason ``content_filter``. The request's
settings are echoed where the ``openai`` SDK's ``Response`` model requires or reads them; ``store`` is
always ``false``: this gateway keeps no responses, so one cannot be retrieved by id.
"""

from __future__ import annotations

import secrets
from typing import Any

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    """An id in OpenAI's style (``resp_``, ``msg_``, ``fc_`` and 48 hex digits)."""
    return f"{prefix}_{secrets.token_hex(24)}"


def answer(chat: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    choices = chat.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    finish = choice.get("finish_reason")
    output = output_items(choice.get("message") or {}, item_status(finish))
    return response(request, new_id("resp"), chat.get("created", 0), chat.get("model", request.get("model")),
                    output, finish, chat.get("usage"))


def output_items(message: dict[str, Any], status: str) -> list[dict[str, Any]]:
    items = []
    if isinstance(message.get("reasoning_content"), str) and message["reasoning_content"]:
        items.append(reasoning_item(new_id("rs"), status, [{"type": "reasoning_text",
                                                            "text": message["reasoning_content"]}]))
    parts = []
    if isinstance(message.get("content"), str) and (message["content"] or not message.get("tool_calls")):
        parts.append(text_part(message["content"]))
    if isinstance(message.get("refusal"), str):
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    if parts:
        items.append(message_item(new_id("msg"), status, parts))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        items.append(function_item(new_id("fc"), call.get("id", ""), function.get("name", ""), status,
                                   function.get("arguments", "")))
    return items


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def reasoning_item(item_id: str, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    """A thinking model's reasoning (chat's ``reasoning_content``: Anthropic, Bedrock) as its own text, which
    is what Responses' ``content`` holds; ``summary`` is for OpenAI's own summaries, which chat has not."""
    return {"type": "reasoning", "id": item_id, "summary": [], "content": content, "status": status}


def function_item(item_id: str, call_id: str, name: str, status: str, arguments: str = "") -> dict[str, Any]:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name, "arguments": arguments,
            "status": status}


def item_status(finish: Any) -> str:
    return "incomplete" if finish in _INCOMPLETE else "completed"


def response(request: dict[str, Any], response_id: str, created: Any, model: Any, output: list[dict[str, Any]],
             finish: Any, usage: Any, status: str | None = None) -> dict[str, Any]:
    """The Response object; ``status`` is given only while streaming (``in_progress``), else read from ``finish``."""
    if status is None:
        status = item_status(finish)
    incomplete = {"reason": _INCOMPLETE[finish]} if status == "incomplete" and finish in _INCOMPLETE else None
    return {
        "id": response_id, "object": "response", "created_at": created, "status": status,
        "completed_at": created if status != "in_progress" else None, "background": False, "error": None,
        "incomplete_details": incomplete, "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"), "model": model, "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True), "previous_response_id": None,
        "reasoning": request.get("reasoning") or {"effort": None, "summary": None}, "store": False,
        "temperature": request.get("temperature", 1.0), "text": _text(request), "tool_choice":
        request.get("tool_choice") or "auto", "tools": request.get("tools") or [],
        "top_p": request.get("top_p", 1.0), "truncation": request.get("truncation") or "disabled",
        "usage": to_usage(usage), "user": request.get("user"), "metadata": request.get("metadata") or {},
    }


def _text(request: dict[str, Any]) -> dict[str, Any]:
    text = request.get("text") if isinstance(request.get("text"), dict) else {}
    return {"format": {"type": "text"}, **text}


def to_usage(usage: Any) -> dict[str, Any] | None:
    """Chat usage in Responses' names; the cache writes (``cache_creation_tokens``, from Anthropic, Bedrock)
    are Responses' ``cache_write_tokens``."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": prompt, "output_tokens": completion,
        "total_tokens": usage.get("total_tokens") or prompt + completion,
        "input_tokens_details": {"cached_tokens": prompt_details.get("cached_tokens") or 0,
                                 "cache_write_tokens": prompt_details.get("cache_creation_tokens") or 0},
        "output_tokens_details": {"reasoning_tokens": completion_details.get("reasoning_tokens") or 0},
    }
