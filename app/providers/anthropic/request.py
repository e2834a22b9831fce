"""An OpenAI chat request -> the body of Anthropic's ``POST /v1/messages``, without ``model``.

Pure: no client, no clock, no environment, so Anthropic-on-Vertex (which names the model in its
URL) reuses ``to_messages_body`` as it is. What cannot be said in Anthropic's API is a 400
(``InvalidRequest`` naming the field), never silently lost: a message, a tool or a content part
either reaches the body or refuses the call.

- ``system`` and ``developer`` messages -> the top-level ``system`` blocks, in order.
- Consecutive turns of one role are merged (Anthropic wants user and assistant turns to alternate);
  ``tool`` messages are ``tool_result`` blocks of a user turn, put before its other blocks, as
  Anthropic requires them first.
- OpenAI params Anthropic lacks: dropped when their value changes nothing (``n: 1``,
  ``presence_penalty: 0``...), else refused naming the param, as LiteLLM does unless the deployment
  sets ``drop_params: true``. Keys OpenAI does not define pass through (``top_k``, ``thinking``...).
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import Any

import msgspec

from app.errors import InvalidRequest

# Params Anthropic has no word for -> the values that change nothing (dropped without a word).
UNSUPPORTED: dict[str, tuple[Any, ...]] = {
    "n": (1,), "presence_penalty": (0, 0.0), "frequency_penalty": (0, 0.0), "logit_bias": ({},),
    "logprobs": (False,), "top_logprobs": (0,), "seed": (), "response_format": ({"type": "text"},),
    "functions": ([],), "function_call": ("none",), "reasoning_effort": (), "modalities": (["text"],),
    "audio": (), "prediction": (), "store": (False,), "web_search_options": (), "verbosity": (),
    "service_tier": ("auto", "default"), "prompt_cache_key": (), "safety_identifier": (),
}
# Translated below, or the gateway's own (``stream_options``: the usage chunk is always made).
_TRANSLATED = frozenset({"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
                         "temperature", "top_p", "stop", "tools", "tool_choice", "parallel_tool_calls", "user"})
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_TOOL_CHOICES = {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}}
_EMPTY_SCHEMA = {"type": "object", "properties": {}}
_decode = msgspec.json.Decoder()


def to_messages_body(payload: dict[str, Any], default_max_tokens: int, *, drop_params: bool = False) -> dict[str, Any]:
    """The Messages API body for ``payload`` (an OpenAI chat request), ``stream`` and ``model`` left out."""
    body: dict[str, Any] = {key: value for key, value in payload.items()
                            if key not in _TRANSLATED and key not in UNSUPPORTED}
    _check_unsupported(payload, drop_params)
    system, messages = split_system(payload.get("messages"))
    if system:
        body["system"] = system
    body["messages"] = merge_turns(messages)
    body["max_tokens"] = _max_tokens(payload, default_max_tokens)
    for key in ("temperature", "top_p"):
        if payload.get(key) is not None:
            body[key] = payload[key]
    _put_stop(body, payload.get("stop"))
    _put_tools(body, payload)
    user = payload.get("user")
    if isinstance(user, str) and user:
        body["metadata"] = {"user_id": user}
    return body


def _check_unsupported(payload: dict[str, Any], drop_params: bool) -> None:
    if drop_params:
        return
    for key, neutral in UNSUPPORTED.items():
        value = payload.get(key)
        if value is not None and not any(value == n and type(value) is type(n) for n in neutral):
            raise InvalidRequest(f"{key} is not supported by anthropic/ models (Anthropic's Messages API has "
                                 "no such parameter); leave it out, or set drop_params: true on the deployment",
                                 param=key, code="unsupported_parameter")


def _max_tokens(payload: dict[str, Any], default: int) -> Any:
    """The client's own limit (``max_completion_tokens`` first: ``max_tokens`` is its deprecated name)."""
    for key in ("max_completion_tokens", "max_tokens"):
        if payload.get(key) is not None:
            return payload[key]
    return default


def _put_stop(body: dict[str, Any], stop: Any) -> None:
    if isinstance(stop, str):
        body["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        body["stop_sequences"] = list(stop)


# --- messages ----------------------------------------------------------------------------------


def split_system(messages: Any) -> tuple[list[dict[str, Any]], list[tuple[str, list[dict[str, Any]]]]]:
    """``system`` blocks, and every other message as (Anthropic role, its blocks)."""
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: expected a non-empty array", param="messages")
    system: list[dict[str, Any]] = []
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"{where}: expected an object", param=where)
        role = message.get("role")
        role = role if isinstance(role, str) else repr(role)
        if role in ("system", "developer"):
            system.extend(_system_blocks(message.get("content"), f"{where}.content"))
        elif role in _TURNS:
            turns.append(_TURNS[role](message, where))
        else:
            raise InvalidRequest(f"{where}.role: {role!r} cannot be sent to anthropic/ models", param=f"{where}.role")
    if not turns:
        raise InvalidRequest("messages: anthropic/ models need a user or assistant message beside the system ones",
                             param="messages")
    return system, turns


def merge_turns(turns: list[tuple[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """One message per run of a role; in a user turn, tool results first (Anthropic refuses them later)."""
    merged: list[dict[str, Any]] = []
    for role, blocks in turns:
        if merged and merged[-1]["role"] == role:
            merged[-1]["content"].extend(blocks)
        else:
            merged.append({"role": role, "content": list(blocks)})
    for message in merged:
        if message["role"] == "user":
            content = message["content"]
            message["content"] = [b for b in content if b["type"] == "tool_result"] + \
                                 [b for b in content if b["type"] != "tool_result"]
    return merged


def _system_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    blocks = _content_blocks(content, where)
    for i, block in enumerate(blocks):
        if block["type"] != "text":
            raise InvalidRequest(f"{where}[{i}]: a system message of anthropic/ models takes only text",
                                 param=f"{where}[{i}]")
    return blocks


def _user(message: dict[str, Any], where: str) -> tuple[str, list[dict[str, Any]]]:
    return "user", _non_empty(_content_blocks(message.get("content"), f"{where}.content"), where)


def _assistant(message: dict[str, Any], where: str) -> tuple[str, list[dict[str, Any]]]:
    content = message.get("content")
    blocks = [] if content is None else _content_blocks(content, f"{where}.content")
    # An empty text beside tool calls is how OpenAI clients write "no text"; Anthropic refuses it.
    blocks = [b for b in blocks if not (b["type"] == "text" and b["text"] == "")]
    calls = message.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise InvalidRequest(f"{where}.tool_calls: expected an array", param=f"{where}.tool_calls")
        blocks.extend(_tool_use(call, f"{where}.tool_calls[{j}]") for j, call in enumerate(calls))
    return "assistant", _non_empty(blocks, where)


def _tool(message: dict[str, Any], where: str) -> tuple[str, list[dict[str, Any]]]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{where}.tool_call_id: required for a tool message", param=f"{where}.tool_call_id")
    content = message.get("content")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    if isinstance(content, str):
        result["content"] = content
    elif content is not None:
        result["content"] = _content_blocks(content, f"{where}.content")
    return "user", [result]


_TURNS: dict[str, Callable[[dict[str, Any], str], tuple[str, list[dict[str, Any]]]]] = {
    "user": _user, "assistant": _assistant, "tool": _tool}


def _non_empty(blocks: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    if not blocks:
        raise InvalidRequest(f"{where}.content: anthropic/ models need content in every message",
                             param=f"{where}.content")
    return blocks


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(f"{where}.function: expected an object with a name", param=f"{where}.function")
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{where}.id: required", param=f"{where}.id")
    return {"type": "tool_use", "id": call_id, "name": function["name"],
            "input": _arguments(function.get("arguments"), f"{where}.function.arguments")}


def _arguments(arguments: Any, where: str) -> dict[str, Any]:
    """OpenAI's arguments are JSON text; Anthropic's ``input`` is the object itself."""
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    try:
        value = _decode.decode(arguments) if isinstance(arguments, str) else None
    except msgspec.DecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where}: anthropic/ models need the arguments as a JSON object", param=where)
    return value


# --- content parts -----------------------------------------------------------------------------


def _content_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}: expected a string or an array of content parts", param=where)
    return [_part(part, f"{where}[{i}]") for i, part in enumerate(content)]


def _part(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" or kind == "refusal":
        text = part.get(kind)
        if not isinstance(text, str):
            raise InvalidRequest(f"{where}.{kind}: expected a string", param=f"{where}.{kind}")
        return _cached({"type": "text", "text": text}, part)
    if kind == "image_url":
        return _cached({"type": "image", "source": image_source(part.get("image_url"), f"{where}.image_url")}, part)
    if kind == "file":
        return _cached(_document(part.get("file"), f"{where}.file"), part)
    raise InvalidRequest(f"{where}: content parts of type {kind!r} cannot be sent to anthropic/ models",
                         param=f"{where}.type")


def _cached(block: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """A part's ``cache_control`` (LiteLLM's way to mark prompt-cache breakpoints) goes with it."""
    if isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


def image_source(image: Any, where: str) -> dict[str, Any]:
    """A ``data:`` URL -> a base64 source, an http(s) URL -> a url source."""
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise InvalidRequest(f"{where}.url: expected a string", param=f"{where}.url")
    if url.startswith(("https://", "http://")):
        return {"type": "url", "url": url}
    media_type, data = _data_url(url, where)
    if media_type not in IMAGE_TYPES:
        raise InvalidRequest(f"{where}: anthropic/ models take images as {', '.join(sorted(IMAGE_TYPES))}",
                             param=f"{where}.url")
    return {"type": "base64", "media_type": media_type, "data": data}


def _document(file: Any, where: str) -> dict[str, Any]:
    """A file part sent inline: a PDF as a base64 document, plain text as a text document."""
    data = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data, str):
        raise InvalidRequest(f"{where}: anthropic/ models take files inline (file_data as a data: URL), "
                             "not by file_id", param=f"{where}.file_data")
    media_type, encoded = _data_url(data, where)
    if media_type == "application/pdf":
        return {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": encoded}}
    if media_type == "text/plain":
        try:
            text = binascii.a2b_base64(encoded, strict_mode=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidRequest(f"{where}.file_data: not base64 UTF-8 text", param=f"{where}.file_data") from None
        return {"type": "document", "source": {"type": "text", "media_type": media_type, "data": text}}
    raise InvalidRequest(f"{where}: anthropic/ models take PDF and plain text files", param=f"{where}.file_data")


def _data_url(url: str, where: str) -> tuple[str, str]:
    """``data:<type>;base64,<data>`` -> (type, data); anything else is refused."""
    head, comma, data = url.partition(",")
    if not (head.startswith("data:") and head.endswith(";base64") and comma and data):
        raise InvalidRequest(f"{where}: expected an http(s) URL or a base64 data: URL", param=where)
    return head[5:-7].lower(), data


# --- tools -------------------------------------------------------------------------------------


def _put_tools(body: dict[str, Any], payload: dict[str, Any]) -> None:
    tools = payload.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidRequest("tools: expected an array", param="tools")
        body["tools"] = [tool_definition(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    choice = tool_choice(payload.get("tool_choice"), payload.get("parallel_tool_calls"))
    if choice is not None:
        body["tool_choice"] = choice


def tool_definition(tool: Any, where: str) -> dict[str, Any]:
    """A function tool -> Anthropic's ``{name, description, input_schema}``; other types (Anthropic's own
    server tools, ``{"type": "web_search_20250305", ...}``) go as they are."""
    if not isinstance(tool, dict):
        raise InvalidRequest(f"{where}: expected an object", param=where)
    if tool.get("type") != "function":
        return tool
    function = tool.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(f"{where}.function: expected an object with a name", param=f"{where}.function")
    schema = function.get("parameters")
    out: dict[str, Any] = {"name": function["name"],
                           "input_schema": schema if isinstance(schema, dict) and schema else _EMPTY_SCHEMA}
    if isinstance(function.get("description"), str):
        out["description"] = function["description"]
    if function.get("strict") is True:
        out["strict"] = True
    return _cached(out, tool)


def tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    """auto/none/required/a named function -> auto/none/any/tool; ``parallel_tool_calls: false`` ->
    ``disable_parallel_tool_use``, which Anthropic keeps on the choice."""
    if choice is None:
        out = {"type": "auto"} if parallel is False else None
    elif isinstance(choice, str) and choice in _TOOL_CHOICES:
        out = dict(_TOOL_CHOICES[choice])
    elif isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("function"), dict) \
            and isinstance(choice["function"].get("name"), str):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise InvalidRequest("tool_choice: anthropic/ models take auto, none, required or a named function",
                             param="tool_choice")
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out
