"""OpenAI chat requests -> Bedrock Converse request bodies: a pure function, no client, no credentials.

Converse (docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html) takes the system
prompt apart from the turns, turns that alternate user/assistant, images as bytes (base64 in JSON) or
S3 locations, tool calls as ``toolUse`` blocks and their results as ``toolResult`` blocks in a user
turn. What it cannot express is a 400 naming the param (LiteLLM without ``drop_params`` does the
same), never a silent drop; keys OpenAI does not define go to ``additionalModelRequestFields``, as
LiteLLM sends them (``top_k``, ``thinking``...).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import msgspec

from app.errors import InvalidRequest

# Sampling parameters of OpenAI's that have no Converse field: refused unless they are the default.
REFUSED = frozenset({"presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "seed",
                     "functions", "function_call", "modalities", "audio", "prediction", "web_search_options",
                     "reasoning_effort", "service_tier", "verbosity"})
# Without meaning to Converse, and harmless to leave out (one choice, the gateway's own stream options).
IGNORED = frozenset({"model", "stream", "stream_options", "user", "parallel_tool_calls", "store", "metadata"})
# Converse's own top-level fields, passed as given (LiteLLM lets ``guardrailConfig`` through too).
NATIVE_FIELDS = frozenset({"guardrailConfig", "performanceConfig", "requestMetadata", "promptVariables",
                           "additionalModelResponseFieldPaths"})
_HANDLED = frozenset({"messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "tools",
                      "tool_choice", "response_format", "n", "additionalModelRequestFields"})
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif",
                 "image/webp": "webp"}


def converse_body(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The Converse (or ConverseStream: the same body) request for an OpenAI chat ``payload``."""
    system, messages = converse_messages(payload.get("messages") or [])
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    inference = _inference_config(payload)
    if inference:
        body["inferenceConfig"] = inference
    tool_config = _tool_config(payload, messages)
    if tool_config:
        body["toolConfig"] = tool_config
    extra = _other_params(payload, body)
    if extra:
        body["additionalModelRequestFields"] = extra
    return body


def encode(body: Mapping[str, Any]) -> bytes:
    return msgspec.json.encode(body)


# --- messages ------------------------------------------------------------------------------------

def converse_messages(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``system`` blocks and the turns; consecutive turns of one role merged (Converse wants them alternating)."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, Mapping) else None
        if role in ("system", "developer"):
            system.extend({"text": text} for text in _texts(message.get("content"), f"{where}.content"))
        elif role == "user":
            _append(turns, "user", _user_blocks(message.get("content"), f"{where}.content"))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message, where))
        elif role == "tool":
            _append(turns, "user", [_tool_result(message, where)])
        else:
            raise InvalidRequest(f"{where}.role: {role!r} cannot be sent to Bedrock (system, developer, user, "
                                 "assistant or tool)", param=f"{where}.role", code="unsupported_value")
    return system, turns


def _append(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _texts(content: Any, where: str) -> list[str]:
    """A content that may only hold text (system, tool results): a string or text parts."""
    if isinstance(content, str):
        return [content]
    out = []
    for j, part in enumerate(content or []):
        if not isinstance(part, Mapping) or part.get("type") != "text":
            kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
            raise InvalidRequest(f"{where}[{j}]: a {kind!r} part cannot be sent here to Bedrock (text only)",
                                 param=f"{where}[{j}]", code="unsupported_value")
        out.append(part.get("text") or "")
    return out


def _user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}: expected a string or a list of parts", param=where, code="invalid_type")
    return [_user_part(part, f"{where}[{j}]") for j, part in enumerate(content)]


def _user_part(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, Mapping) else None
    if kind == "text":
        return {"text": part.get("text") or ""}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        return {"image": image_block(url, f"{where}.image_url.url")}
    raise InvalidRequest(f"{where}: a {kind!r} part cannot be sent to Bedrock (text and image_url)",
                         param=where, code="unsupported_value")


def image_block(url: Any, where: str) -> dict[str, Any]:
    """A base64 ``data:`` URL -> Converse's ``{"format", "source": {"bytes"}}`` (base64 in JSON, as sent)."""
    if not isinstance(url, str) or not url.startswith("data:"):
        raise InvalidRequest(f"{where}: Bedrock takes images as bytes, not URLs: send a base64 data: URL "
                             "(data:image/png;base64,...)", param=where, code="unsupported_value")
    head, _, data = url[5:].partition(",")
    mime, _, encoding = head.partition(";")
    image_format = IMAGE_FORMATS.get(mime.lower())
    if image_format is None or encoding.lower() != "base64":
        raise InvalidRequest(f"{where}: a base64 data: URL of a png, jpeg, gif or webp image is expected",
                             param=where, code="unsupported_value")
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{where}: the data: URL is not valid base64", param=where,
                             code="invalid_value") from None
    return {"format": image_format, "source": {"bytes": data}}


def _assistant_blocks(message: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    content = message.get("content")
    blocks: list[dict[str, Any]] = []
    if isinstance(content, str):
        if content:  # "" beside tool calls means "no text"; Bedrock refuses a blank text block
            blocks.append({"text": content})
    elif content is not None:
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, Mapping) else None
            if kind not in ("text", "refusal"):
                raise InvalidRequest(f"{where}.content[{j}]: a {kind!r} part cannot be sent to Bedrock in an "
                                     "assistant message", param=f"{where}.content[{j}]", code="unsupported_value")
            blocks.append({"text": part.get(kind) or ""})
    for k, call in enumerate(message.get("tool_calls") or []):
        blocks.append({"toolUse": _tool_use(call, f"{where}.tool_calls[{k}]")})
    return blocks


def _tool_use(call: Mapping[str, Any], where: str) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments") or "{}"
    try:
        parsed = msgspec.json.decode(arguments) if isinstance(arguments, str | bytes) else arguments
    except msgspec.DecodeError:
        parsed = None
    if not isinstance(parsed, dict):  # Converse's ``input`` is the call's JSON object
        raise InvalidRequest(f"{where}.function.arguments: Bedrock needs a JSON object", code="invalid_value",
                             param=f"{where}.function.arguments")
    return {"toolUseId": call.get("id") or "", "name": function.get("name") or "", "input": parsed}


def _tool_result(message: Mapping[str, Any], where: str) -> dict[str, Any]:
    texts = _texts(message.get("content"), f"{where}.content")
    return {"toolResult": {"toolUseId": message.get("tool_call_id") or "",
                           "content": [{"text": text} for text in texts]}}


# --- parameters ----------------------------------------------------------------------------------

def _inference_config(payload: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    max_tokens = payload.get("max_completion_tokens", payload.get("max_tokens"))
    for key, value in (("maxTokens", max_tokens), ("temperature", payload.get("temperature")),
                       ("topP", payload.get("top_p"))):
        if value is not None:
            config[key] = value
    stop = payload.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    return config


def _tool_config(payload: Mapping[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    tools = payload.get("tools")
    if not tools:
        return None
    choice = payload.get("tool_choice")
    # Converse has no "none": the tools are left out, unless the turns hold tool blocks (Converse then
    # insists on a toolConfig), when they are sent with no choice and the model may still call one.
    if choice == "none" and not _has_tool_blocks(messages):
        return None
    config: dict[str, Any] = {"tools": [_tool_spec(tool, f"tools[{i}]") for i, tool in enumerate(tools)]}
    mapped = _tool_choice(choice)
    if mapped is not None:
        config["toolChoice"] = mapped
    return config


def _has_tool_blocks(messages: list[dict[str, Any]]) -> bool:
    return any("toolUse" in block or "toolResult" in block for m in messages for block in m["content"])


def _tool_spec(tool: Mapping[str, Any], where: str) -> dict[str, Any]:
    if tool.get("type", "function") != "function":
        raise InvalidRequest(f"{where}.type: only function tools can be sent to Bedrock", param=f"{where}.type",
                             code="unsupported_value")
    function = tool.get("function") or {}
    spec: dict[str, Any] = {"name": function.get("name") or "",
                            "inputSchema": {"json": function.get("parameters") or {"type": "object",
                                                                                   "properties": {}}}}
    if function.get("description"):
        spec["description"] = function["description"]
    if function.get("strict") is not None:
        spec["strict"] = bool(function["strict"])
    return {"toolSpec": spec}


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice == "required":
        return {"any": {}}
    if choice == "auto":
        return {"auto": {}}
    if isinstance(choice, Mapping):
        return {"tool": {"name": (choice.get("function") or {}).get("name") or ""}}
    return None  # absent or "none": Converse's default (auto)


def _other_params(payload: Mapping[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Converse's own fields into ``body``; OpenAI's unsupported ones refused; the rest model-specific."""
    _refuse_unsupported(payload)
    extra = dict(payload.get("additionalModelRequestFields") or {})
    for key, value in payload.items():
        if key in NATIVE_FIELDS:
            body[key] = value
        elif key not in _HANDLED and key not in IGNORED and key not in REFUSED:
            extra[key] = value
    return extra


def _refuse_unsupported(payload: Mapping[str, Any]) -> None:
    for key in REFUSED:
        if payload.get(key) not in (None, False, 0, [], {}):
            raise InvalidRequest(f"{key}: not supported by Bedrock's Converse API", param=key,
                                 code="unsupported_parameter")
    if (payload.get("n") or 1) > 1:
        raise InvalidRequest("n: Bedrock answers with one choice", param="n", code="unsupported_value")
    response_format = payload.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type", "text") != "text":
        raise InvalidRequest("response_format: only text is supported for Bedrock models", code="unsupported_value",
                             param="response_format.type")
