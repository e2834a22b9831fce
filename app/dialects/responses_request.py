"""An OpenAI Responses request (``POST /v1/responses``) -> an OpenAI chat body.

Shapes from platform.openai.com/docs/api-reference/responses/create: ``input`` is a string or a list of
items (messages whose content is a string or ``input_text`` / ``input_image`` / ``input_file`` /
``output_text`` / ``refusal`` parts; ``function_call`` and ``function_call_output`` items), ``instructions``
is a system message put first, ``tools`` are flat function tools (``{"type": "function", "name", ...}``,
chat nests them under ``function``), ``text.format`` is chat's ``response_format`` flattened.

What the gateway cannot do is refused with a 400 naming the field, never dropped: it keeps no response
store, so ``previous_response_id``, ``conversation``, ``prompt`` (a stored prompt) and ``background: true``
are refused; ``store`` is accepted and answered ``"store": false`` (see ``ResponsesDialect.answer``).
Hosted tools (web search, file search, computer use...) run inside OpenAI and have no chat equivalent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.errors import InvalidRequest

ROLES = frozenset({"user", "assistant", "system", "developer"})
TOOL_CHOICES = frozenset({"auto", "none", "required"})
# Fields copied as they are: chat has the same name and meaning (chat validation checks their values).
_SAME = ("model", "temperature", "top_p", "user", "parallel_tool_calls", "service_tier", "prompt_cache_key",
         "safety_identifier")
# Accepted and without effect here, each for a reason: ``store`` (no store; the answer says ``store: false``),
# ``include`` (asks for extra output data: encrypted reasoning, logprobs, sources the gateway does not have),
# ``truncation`` (the gateway never truncates; an input too long is the upstream's 400 either way),
# ``stream_options`` (only ``include_obfuscation``, padding the gateway does not add).
_ACCEPTED = frozenset({"store", "include", "truncation", "stream_options"})
_REFUSED = {
    "previous_response_id": "responses are not stored by this gateway: send the whole conversation in `input`",
    "conversation": "conversations are not stored by this gateway: send the whole conversation in `input`",
    "prompt": "stored prompts are not available through this gateway: send `instructions` and `input`",
}


def bad(param: str, message: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """The chat body for one Responses request, or a 400 whose ``param`` is the Responses field."""
    if not isinstance(body.get("model"), str):
        raise bad("model", "`model` is required and must be a string", "missing_required_parameter")
    chat: dict[str, Any] = {}
    for key, value in body.items():
        if value is None:
            continue  # null means "the default", as OpenAI reads it
        _FIELDS.get(key, _unknown)(chat, key, value)
    chat["messages"] = _instructions(body.get("instructions")) + chat.pop("messages", [])
    if not chat["messages"]:
        raise bad("input", "`input` is required: a string or a list of input items", "missing_required_parameter")
    return chat


def _unknown(chat: dict[str, Any], key: str, value: Any) -> None:
    if key in _REFUSED:
        raise bad(key, f"`{key}` is not supported: {_REFUSED[key]}", "unsupported_parameter")
    if key not in _ACCEPTED:
        raise bad(key, f"`{key}` is not a Responses field this gateway translates", "unsupported_parameter")


def _same(chat: dict[str, Any], key: str, value: Any) -> None:
    chat[key] = value


def _instructions(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, str):
        raise bad("instructions", "`instructions` must be a string")
    return [{"role": "system", "content": value}]


def _skip(chat: dict[str, Any], key: str, value: Any) -> None:
    """Read elsewhere (``instructions`` goes first, after every other field is read)."""


def _stream(chat: dict[str, Any], key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise bad("stream", "`stream` must be a boolean")
    chat["stream"] = value
    if value:  # response.completed carries usage, so the chat stream must end with its usage chunk
        chat["stream_options"] = {"include_usage": True}


def _metadata(chat: dict[str, Any], key: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise bad("metadata", "`metadata` must be an object")
    chat["metadata"] = value  # the gateway reads LiteLLM's keys from it as from a chat call's


def _background(chat: dict[str, Any], key: str, value: Any) -> None:
    if value is not False:
        raise bad("background", "`background` mode is not supported: this gateway keeps no response store",
                  "unsupported_parameter")


def _max_output_tokens(chat: dict[str, Any], key: str, value: Any) -> None:
    chat["max_completion_tokens"] = value


def _reasoning(chat: dict[str, Any], key: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise bad("reasoning", "`reasoning` must be an object")
    if value.get("effort") is not None:  # ``summary`` asks for reasoning summaries, which chat does not return
        chat["reasoning_effort"] = value["effort"]


def _text(chat: dict[str, Any], key: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise bad("text", "`text` must be an object")
    if value.get("verbosity") is not None:
        chat["verbosity"] = value["verbosity"]
    fmt = value.get("format")
    if fmt is not None:
        chat.update(_text_format(fmt))


def _text_format(fmt: Any) -> dict[str, Any]:
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"response_format": {"type": "json_object"}}
    if kind == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"response_format": {"type": "json_schema", "json_schema": schema}}
    raise bad("text.format.type", "`text.format.type` must be one of text, json_object, json_schema")


def _tools(chat: dict[str, Any], key: str, value: Any) -> None:
    if not isinstance(value, list):
        raise bad("tools", "`tools` must be a list")
    if value:
        chat["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(value)]


def _tool(tool: Any, param: str) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise bad(param, f"`{param}` must be an object")
    if tool.get("type") != "function":
        raise bad(f"{param}.type", f"tool type {tool.get('type')!r} is not supported by this gateway: only "
                  "function tools are (hosted tools run inside OpenAI)", "unsupported_parameter")
    if not isinstance(tool.get("name"), str):
        raise bad(f"{param}.name", f"`{param}.name` is required and must be a string", "missing_required_parameter")
    function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None}
    return {"type": "function", "function": function}


def _tool_choice(chat: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, str) and value in TOOL_CHOICES:
        chat["tool_choice"] = value
    elif isinstance(value, dict) and value.get("type") == "function" and isinstance(value.get("name"), str):
        chat["tool_choice"] = {"type": "function", "function": {"name": value["name"]}}
    else:
        raise bad("tool_choice", "`tool_choice` must be auto, none, required or {\"type\": \"function\", \"name\"}: "
                  "hosted and allowed_tools choices are not supported by this gateway")


def _input(chat: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, str):
        chat["messages"] = [{"role": "user", "content": value}]
    elif isinstance(value, list):
        chat["messages"] = _items(value)
    else:
        raise bad("input", "`input` must be a string or a list of input items")


def _items(items: list[Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        param = f"input[{i}]"
        if not isinstance(item, dict):
            raise bad(param, f"`{param}` must be an object")
        kind = item.get("type", "message")  # EasyInputMessage has no type
        if kind not in _ITEMS:
            raise bad(f"{param}.type", f"input item type {kind!r} is not supported by this gateway",
                      "unsupported_parameter")
        _ITEMS[kind](messages, item, param)
    return messages


def _message(messages: list[dict[str, Any]], item: dict[str, Any], param: str) -> None:
    role = item.get("role")
    if role not in ROLES:
        raise bad(f"{param}.role", f"`{param}.role` must be one of user, assistant, system, developer")
    content = item.get("content")
    if isinstance(content, list):
        content = [_part(part, f"{param}.content[{j}]") for j, part in enumerate(content)]
    elif not isinstance(content, str):
        raise bad(f"{param}.content", f"`{param}.content` must be a string or a list of content parts")
    messages.append({"role": role, "content": content})


def _function_call(messages: list[dict[str, Any]], item: dict[str, Any], param: str) -> None:
    for field in ("call_id", "name", "arguments"):
        if not isinstance(item.get(field), str):
            raise bad(f"{param}.{field}", f"`{param}.{field}` is required and must be a string",
                      "missing_required_parameter")
    call = {"id": item["call_id"], "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]}}
    last = messages[-1] if messages else None
    # Responses lists an answer's text and its calls as sibling items; chat holds them in one assistant message.
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _function_call_output(messages: list[dict[str, Any]], item: dict[str, Any], param: str) -> None:
    if not isinstance(item.get("call_id"), str):
        raise bad(f"{param}.call_id", f"`{param}.call_id` is required and must be a string",
                  "missing_required_parameter")
    output = item.get("output")
    if isinstance(output, list):
        output = [_part(part, f"{param}.output[{j}]") for j, part in enumerate(output)]
    elif not isinstance(output, str):
        raise bad(f"{param}.output", f"`{param}.output` must be a string or a list of content parts")
    messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": output})


def _reasoning_item(messages: list[dict[str, Any]], item: dict[str, Any], param: str) -> None:
    """A reasoning item sent back (Codex does, with ``store: false``) is the model's own state, opaque to chat;
    it has no chat message to become, so it is left out rather than failing every follow-up turn."""


def _part(part: Any, param: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind not in _PARTS:
        raise bad(f"{param}.type", f"content part type {kind!r} is not supported by this gateway")
    return _PARTS[kind](part, param)


def _text_part(part: dict[str, Any], param: str) -> dict[str, Any]:
    if not isinstance(part.get("text"), str):
        raise bad(f"{param}.text", f"`{param}.text` must be a string", "missing_required_parameter")
    return {"type": "text", "text": part["text"]}


def _refusal_part(part: dict[str, Any], param: str) -> dict[str, Any]:
    if not isinstance(part.get("refusal"), str):
        raise bad(f"{param}.refusal", f"`{param}.refusal` must be a string", "missing_required_parameter")
    return {"type": "text", "text": part["refusal"]}


def _image_part(part: dict[str, Any], param: str) -> dict[str, Any]:
    if not isinstance(part.get("image_url"), str):  # a ``file_id`` names a file in OpenAI's store
        raise bad(f"{param}.image_url", f"`{param}.image_url` is required (a URL or a data URL); file_id "
                  "images are not supported by this gateway", "missing_required_parameter")
    image = {"url": part["image_url"]}
    if part.get("detail") is not None:
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def _file_part(part: dict[str, Any], param: str) -> dict[str, Any]:
    file = {k: part[k] for k in ("file_data", "file_id", "filename") if isinstance(part.get(k), str)}
    if "file_data" not in file and "file_id" not in file:
        raise bad(f"{param}.file_data", f"`{param}` needs file_data or file_id", "missing_required_parameter")
    return {"type": "file", "file": file}


_Field = Callable[[dict[str, Any], str, Any], None]
_FIELDS: dict[str, _Field] = {
    **dict.fromkeys(_SAME, _same), "input": _input, "instructions": _skip, "stream": _stream,
    "background": _background, "metadata": _metadata, "max_output_tokens": _max_output_tokens, "reasoning": _reasoning,
    "text": _text, "tools": _tools, "tool_choice": _tool_choice,
}
_ITEMS: dict[str, Callable[[list[dict[str, Any]], dict[str, Any], str], None]] = {
    "message": _message, "function_call": _function_call, "function_call_output": _function_call_output,
    "reasoning": _reasoning_item,
}
_PARTS: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "input_text": _text_part, "output_text": _text_part, "refusal": _refusal_part, "input_image": _image_part,
    "input_file": _file_part,
}
