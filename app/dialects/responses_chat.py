"""An OpenAI Response object -> the chat completion it amounts to, for a Responses call passed through to
OpenAI (``app.dialects.responses_native``): the client keeps OpenAI's bytes, while the span, metrics,
the hooks' success and the callbacks read chat, as for every other call.

The inverse of ``responses_answer``: ``message`` items' ``output_text`` (and ``refusal``) parts become the
message's content, ``function_call`` items its tool calls, ``reasoning`` summaries its ``reasoning_content``;
``usage`` ``input_tokens``/``output_tokens`` become ``prompt_tokens``/``completion_tokens`` with their details;
``status`` becomes the finish reason (``incomplete`` by ``max_output_tokens`` is ``length``). Pure, and it
never raises on a Response it cannot read: what is missing is left out.
"""

from __future__ import annotations

from typing import Any

_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}


def chat_of_response(response: dict[str, Any]) -> dict[str, Any]:
    items = [item for item in _list(response.get("output")) if isinstance(item, dict)]
    message = _message(items)
    chat: dict[str, Any] = {"id": response.get("id"), "object": "chat.completion",
                            "created": response.get("created_at"), "model": response.get("model"),
                            "choices": [{"index": 0, "message": message,
                                         "finish_reason": finish_reason(response, message)}]}
    usage = chat_usage(response.get("usage"))
    if usage is not None:
        chat["usage"] = usage
    return chat


def finish_reason(response: dict[str, Any], message: dict[str, Any]) -> str | None:
    status = response.get("status")
    if status == "incomplete":
        details = response.get("incomplete_details")
        return _INCOMPLETE.get(details.get("reason") if isinstance(details, dict) else None, "length")
    if status != "completed":
        return None  # failed, cancelled, in progress: no chat finish reason says it
    return "tool_calls" if message.get("tool_calls") else "stop"


def chat_usage(usage: Any) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return None
    prompt, completion = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                           "total_tokens": _int(usage.get("total_tokens")) or prompt + completion}
    for theirs, ours, key in (("input_tokens_details", "prompt_tokens_details", "cached_tokens"),
                              ("output_tokens_details", "completion_tokens_details", "reasoning_tokens")):
        details = usage.get(theirs)
        if isinstance(details, dict) and isinstance(details.get(key), int):
            out[ours] = {key: details[key]}
    return out


def _message(items: list[dict[str, Any]]) -> dict[str, Any]:
    texts, refusals, reasoning = [], [], []
    calls = [_tool_call(item) for item in items if item.get("type") == "function_call"]
    for item in items:
        if item.get("type") == "message":
            for part in (p for p in _list(item.get("content")) if isinstance(p, dict)):
                if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
                    refusals.append(part["refusal"])
        elif item.get("type") == "reasoning":
            reasoning += [s["text"] for s in _list(item.get("summary")) if isinstance(s, dict)
                          and isinstance(s.get("text"), str)]
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if refusals:
        message["refusal"] = "".join(refusals)
    if reasoning:
        message["reasoning_content"] = "\n".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_call(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item.get("call_id") or item.get("id"), "type": "function",
            "function": {"name": item.get("name"), "arguments": item.get("arguments") or ""}}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
