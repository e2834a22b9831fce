"""An Anthropic Messages request -> an OpenAI chat body (the gateway's one shape inside).

Pure. Every message, block and tool either reaches the chat body or refuses the call with a 400
naming the Anthropic field (``messages[1].content[0].source``), with one exception: ``thinking`` and
``redacted_thinking`` blocks of earlier assistant turns are dropped, as chat has no word for them (only
an ``anthropic/`` deployment's answers carry them, and a call to one goes through as it is when it can:
``messages_native``; this translation is for the others). Server tool blocks (``SERVER_BLOCKS``) are
left out of the chat body too, but a call holding them is refused unless it passes through.

- ``system`` -> a system message (text blocks keep their ``cache_control``, LiteLLM's way to mark
  prompt-cache breakpoints, which an ``anthropic/`` deployment sends on).
- a user turn's ``tool_result`` blocks -> ``tool`` messages, first (``is_error`` as an ``Error:`` prefix,
  images in a result go to the user message after them); its other blocks -> one user message.
- an assistant turn's ``tool_use`` blocks -> ``tool_calls``, its text -> ``content``.
- ``stop_sequences`` -> ``stop``, ``metadata.user_id`` -> ``user`` (the span's end user), the rest of
  ``metadata`` -> LiteLLM's ``metadata``; ``tool_choice`` any/tool/none -> required/a named function/none,
  ``disable_parallel_tool_use`` -> ``parallel_tool_calls: false``; keys this module does not know
  (``top_k``, ``thinking``...) pass through for the deployment to judge.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import msgspec

from app.errors import InvalidRequest

_encode = msgspec.json.Encoder()
_TRANSLATED = frozenset({"model", "messages", "system", "max_tokens", "stop_sequences", "metadata", "stream",
                         "tools", "tool_choice", "temperature", "top_p"})
_DROPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})
# Anthropic's server tools' blocks (web search and fetch, code execution, the MCP connector...): only
# Anthropic reads them. Left out of the chat view; ``server_block`` finds them, so such a call goes to an
# ``anthropic/`` deployment as it is or is refused (``app.dialects.messages_native``), never sent without.
SERVER_BLOCKS = frozenset({"server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
                           "code_execution_tool_result", "bash_code_execution_tool_result",
                           "text_editor_code_execution_tool_result", "tool_search_tool_result", "mcp_tool_use",
                           "mcp_tool_result", "container_upload"})
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def to_chat(body: dict[str, Any], *, need_max_tokens: bool = True) -> dict[str, Any]:
    """The chat body for ``body``; ``need_max_tokens`` is off for ``count_tokens``, which has none."""
    chat: dict[str, Any] = {key: value for key, value in body.items() if key not in _TRANSLATED}
    chat["model"] = _model(body.get("model"))
    chat["messages"] = _system(body.get("system")) + _messages(body.get("messages"))
    if need_max_tokens or "max_tokens" in body:
        chat["max_tokens"] = _max_tokens(body.get("max_tokens"))
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            chat[key] = _number(body[key], key)
    _put_stop(chat, body.get("stop_sequences"))
    _put_metadata(chat, body.get("metadata"))
    _put_tools(chat, body)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _bad("stream", "expected a boolean")
    if stream:
        # The usage chunk is what the dialect's message_delta counts: it must reach the dialect.
        chat["stream"], chat["stream_options"] = True, {"include_usage": True}
    return chat


def _bad(param: str, what: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {what}", param=param)


def _model(model: Any) -> str:
    if model is None:
        raise InvalidRequest("model: field required", param="model", code="missing_required_parameter")
    if not isinstance(model, str) or not model:
        raise _bad("model", "expected a non-empty string")
    return model


def _max_tokens(value: Any) -> int:
    if value is None:
        raise InvalidRequest("max_tokens: field required", param="max_tokens", code="missing_required_parameter")
    if type(value) is not int or value < 1:
        raise _bad("max_tokens", "expected an integer of at least 1")
    return value


def _number(value: Any, param: str) -> float | int:
    if type(value) not in (int, float):
        raise _bad(param, "expected a number")
    return value


def _put_stop(chat: dict[str, Any], stop: Any) -> None:
    if stop is None:
        return
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise _bad("stop_sequences", "expected an array of strings")
    if stop:
        chat["stop"] = stop


def _put_metadata(chat: dict[str, Any], metadata: Any) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise _bad("metadata", "expected an object")
    rest = {key: value for key, value in metadata.items() if key != "user_id"}
    user = metadata.get("user_id")
    if user is not None:
        if not isinstance(user, str):
            raise _bad("metadata.user_id", "expected a string")
        chat["user"] = user
    if rest:
        chat["metadata"] = rest


# --- system and messages -----------------------------------------------------------------------


def _system(system: Any) -> list[dict[str, Any]]:
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    if not isinstance(system, list):
        raise _bad("system", "expected a string or an array of text blocks")
    parts = [_text_part(block, f"system[{i}]") for i, block in enumerate(system)]
    return [{"role": "system", "content": _flat(parts)}] if parts else []


def _messages(messages: Any) -> list[dict[str, Any]]:
    if messages is None:
        raise InvalidRequest("messages: field required", param="messages", code="missing_required_parameter")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages", "expected a non-empty array of messages")
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        turn = _TURNS.get(role) if isinstance(role, str) else None
        if turn is None:
            raise _bad(f"{where}.role", "expected 'user' or 'assistant'")
        out.extend(turn(_blocks(message.get("content"), f"{where}.content"), f"{where}.content"))
    return out


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not content:
        raise _bad(where, "expected a string or a non-empty array of content blocks")
    for i, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise _bad(f"{where}[{i}]", "expected a content block with a type")
    return content


def _user(blocks: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(blocks):
        at = f"{where}[{i}]"
        if block["type"] == "tool_result":
            tools.append(_tool_result(block, at, parts))
        elif block["type"] not in _DROPPED_BLOCKS:
            parts.append(_part(block, at))
    return tools + ([{"role": "user", "content": _flat(parts)}] if parts else [])


def _assistant(blocks: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for i, block in enumerate(blocks):
        at = f"{where}[{i}]"
        if block["type"] == "tool_use":
            calls.append(_tool_call(block, at))
        elif block["type"] == "text":
            parts.append(_text_part(block, at))
        elif block["type"] not in _DROPPED_BLOCKS and block["type"] not in SERVER_BLOCKS:
            raise _bad(f"{at}.type", f"an assistant turn takes text and tool_use blocks here, not {block['type']!r}")
    message: dict[str, Any] = {"role": "assistant", "content": _flat(parts) if parts else None}
    if calls:
        message["tool_calls"] = calls
    return [message] if parts or calls else []


def _flat(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """One plain text part is said as a string, as chat clients write it (and every upstream takes)."""
    if len(parts) == 1 and parts[0]["type"] == "text" and "cache_control" not in parts[0]:
        return parts[0]["text"]
    return parts


_TURNS: dict[str, Callable[[list[dict[str, Any]], str], list[dict[str, Any]]]] = {
    "user": _user, "assistant": _assistant}


def _tool_call(block: dict[str, Any], where: str) -> dict[str, Any]:
    for key in ("id", "name"):
        if not isinstance(block.get(key), str) or not block[key]:
            raise _bad(f"{where}.{key}", "expected a non-empty string")
    arguments = block.get("input")
    if arguments is not None and not isinstance(arguments, dict):
        raise _bad(f"{where}.input", "expected an object")
    return {"id": block["id"], "type": "function",
            "function": {"name": block["name"], "arguments": _encode.encode(arguments or {}).decode()}}


def _tool_result(block: dict[str, Any], where: str, images: list[dict[str, Any]]) -> dict[str, Any]:
    """A tool message; the result's images join ``images``, the user message that follows."""
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise _bad(f"{where}.tool_use_id", "expected a non-empty string")
    content = block.get("content")
    if content is None or isinstance(content, str):
        texts = [{"type": "text", "text": content or ""}]
    elif isinstance(content, list):
        texts = []
        for i, inner in enumerate(content):
            part = _part(inner, f"{where}.content[{i}]") if isinstance(inner, dict) else None
            if part is None:
                raise _bad(f"{where}.content[{i}]", "expected a content block")
            (texts if part["type"] == "text" else images).append(part)
    else:
        raise _bad(f"{where}.content", "expected a string or an array of content blocks")
    if block.get("is_error") is True:  # chat has no error flag: the words say it
        texts.insert(0, {"type": "text", "text": "Error:"})
    return {"role": "tool", "tool_call_id": call_id, "content": texts or [{"type": "text", "text": ""}]}


def _part(block: dict[str, Any], where: str) -> dict[str, Any]:
    kind = block.get("type")
    if kind == "text":
        return _text_part(block, where)
    if kind == "image":
        return _cached({"type": "image_url", "image_url": {"url": _image_url(block.get("source"), f"{where}.source")}},
                       block)
    if kind == "document":
        return _cached({"type": "file", "file": {"file_data": _document(block.get("source"), f"{where}.source")}},
                       block)
    raise _bad(f"{where}.type", f"content blocks of type {kind!r} cannot be translated for this model")


def _text_part(block: Any, where: str) -> dict[str, Any]:
    if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
        raise _bad(where, "expected a text block with a string 'text'")
    return _cached({"type": "text", "text": block["text"]}, block)


def _cached(part: dict[str, Any], block: dict[str, Any]) -> dict[str, Any]:
    if isinstance(block.get("cache_control"), dict):
        part["cache_control"] = block["cache_control"]
    return part


def _image_url(source: Any, where: str) -> str:
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "url" and isinstance(source.get("url"), str):
        return source["url"]
    if kind == "base64" and isinstance(source.get("media_type"), str) and isinstance(source.get("data"), str):
        return f"data:{source['media_type']};base64,{source['data']}"
    raise _bad(where, "expected a url source or a base64 source with media_type and data")


def _document(source: Any, where: str) -> str:
    """A PDF or plain-text document as the data: URL a chat file part carries."""
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source.get("media_type"), str) and isinstance(source.get("data"), str):
        return f"data:{source['media_type']};base64,{source['data']}"
    if kind == "text" and isinstance(source.get("data"), str):
        return "data:text/plain;base64," + base64.b64encode(source["data"].encode()).decode()
    raise _bad(where, "expected a base64 or text document source")


# --- tools -------------------------------------------------------------------------------------


def _put_tools(chat: dict[str, Any], body: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad("tools", "expected an array")
        if tools:
            chat["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    choice = body.get("tool_choice")
    if choice is not None:
        _put_tool_choice(chat, choice)


def _tool(tool: Any, where: str) -> dict[str, Any]:
    """A client tool -> a function tool; Anthropic's server tools (``web_search_20250305``...) go as they
    are, for an ``anthropic/`` deployment."""
    if not isinstance(tool, dict):
        raise _bad(where, "expected an object")
    if tool.get("type") not in (None, "custom"):
        return tool
    if not isinstance(tool.get("name"), str) or not tool["name"]:
        raise _bad(f"{where}.name", "expected a non-empty string")
    schema = tool.get("input_schema")
    if not isinstance(schema, dict):
        raise _bad(f"{where}.input_schema", "expected a JSON schema object")
    function: dict[str, Any] = {"name": tool["name"], "parameters": schema}
    if tool.get("description") is not None:
        if not isinstance(tool["description"], str):
            raise _bad(f"{where}.description", "expected a string")
        function["description"] = tool["description"]
    return _cached({"type": "function", "function": function}, tool)


def _put_tool_choice(chat: dict[str, Any], choice: Any) -> None:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind in _TOOL_CHOICES:
        chat["tool_choice"] = _TOOL_CHOICES[kind]
    elif kind == "tool" and isinstance(choice.get("name"), str) and choice["name"]:
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise _bad("tool_choice", "expected {type: auto|any|none} or {type: tool, name}")
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        chat["parallel_tool_calls"] = False


def server_block(body: dict[str, Any]) -> tuple[str, str] | None:
    """Where the first server tool block of a Messages request is, and its type."""
    for i, message in enumerate(body.get("messages") or ()):
        content = message.get("content") if isinstance(message, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else ()):
            if isinstance(block, dict) and block.get("type") in SERVER_BLOCKS:
                return f"messages[{i}].content[{j}]", str(block["type"])
    return None
