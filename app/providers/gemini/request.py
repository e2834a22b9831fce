"""OpenAI request bodies -> Gemini ``GenerateContentRequest`` and ``BatchEmbedContentsRequest``.

Pure functions: what they cannot say in Gemini's terms is an ``InvalidRequest`` (a 400 naming the
param), never a silent drop of a message, a part or a tool. Gemini has two roles (``user``,
``model``); system and developer messages go to ``systemInstruction`` in their order, tool results
are ``functionResponse`` parts of a ``user`` turn, named after the tool call they answer (Gemini
matches results to calls by name).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from typing import Any

import msgspec

from app.errors import InvalidRequest
from app.providers.gemini.ids import split_call_id

_decode = msgspec.json.decode
# OpenAI param -> generationConfig field, for those that carry over as they are.
_GENERATION = (("temperature", "temperature"), ("top_p", "topP"), ("n", "candidateCount"), ("seed", "seed"),
               ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty"))
_TOOL_MODES = {"none": "NONE", "auto": "AUTO", "required": "ANY"}
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}
# Refused rather than dropped: the answer would not be what the client asked for.
_INT64 = 2**63
_REFUSED = ("logprobs", "top_logprobs", "logit_bias", "audio", "prediction")


def chat_body(payload: Mapping[str, Any]) -> dict[str, Any]:
    for name in _REFUSED:
        if payload.get(name) not in (None, False):
            raise InvalidRequest(f"{name} is not supported by Gemini models", code="unsupported_parameter",
                                 param=name)
    system, contents = _contents(_list(payload.get("messages"), "messages"))
    if not contents:  # Gemini needs a turn; OpenAI (and LiteLLM) take system messages alone as the prompt
        system, contents = [], [{"role": "user", "parts": system or [{"text": ""}]}]
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    config = generation_config(payload)
    if config:
        body["generationConfig"] = config
    tools = payload.get("tools")
    if tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t, i) for i, t in enumerate(_list(tools, "tools"))]}]
    choice = payload.get("tool_choice")
    if choice is not None:
        body["toolConfig"] = {"functionCallingConfig": _tool_choice(choice)}
    return body


def embed_body(payload: Mapping[str, Any], model: str) -> dict[str, Any]:
    texts = _inputs(payload.get("input"))
    dimensions = payload.get("dimensions")
    extra = {"outputDimensionality": _number(dimensions, "dimensions", integer=True)} if dimensions is not None else {}
    return {"requests": [{"model": f"models/{model}", "content": {"parts": [{"text": t}]}, **extra} for t in texts]}


def generation_config(payload: Mapping[str, Any]) -> dict[str, Any]:
    config = {field: _number(payload[key], key) for key, field in _GENERATION if payload.get(key) is not None}
    limit = payload.get("max_completion_tokens", payload.get("max_tokens"))
    if limit is not None:
        config["maxOutputTokens"] = _number(limit, "max_tokens", integer=True)
    for key in ("n", "seed"):
        if key in payload and payload[key] is not None:
            _number(payload[key], key, integer=True)
    stop = payload.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else [
            _str(s, f"stop[{i}]") for i, s in enumerate(_list(stop, "stop"))]
    config.update(_response_format(payload.get("response_format")))
    return config


def _response_format(fmt: Any) -> dict[str, Any]:
    if fmt is None:
        return {}
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        # responseJsonSchema takes JSON Schema as OpenAI's clients write it (additionalProperties
        # and all); responseSchema would need it rewritten into OpenAPI's subset.
        return {"responseMimeType": "application/json",
                **({"responseJsonSchema": schema} if isinstance(schema, Mapping) else {})}
    raise InvalidRequest("response_format.type must be text, json_object or json_schema", param="response_format")


# --- messages ---------------------------------------------------------------------------------------


def _contents(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name, from the assistant turns so far
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise InvalidRequest(f"{where} must be an object", param=where)
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_parts(message.get("content"), where))
        elif role == "user":
            contents.append({"role": "user", "parts": _user_parts(message.get("content"), where)})
        elif role == "assistant":
            contents.append({"role": "model", "parts": _model_parts(message, where, names)})
        elif role in ("tool", "function"):
            _add_result(contents, _function_response(message, where, names))
        else:
            raise InvalidRequest(f"{where}.role {role!r} is not one Gemini models take", param=f"{where}.role")
    return system, contents


def _add_result(contents: list[dict[str, Any]], part: dict[str, Any]) -> None:
    """Results of one turn's calls go together in one ``user`` turn, as Gemini pairs them."""
    last = contents[-1] if contents else None
    if last and last["role"] == "user" and all("functionResponse" in p for p in last["parts"]):
        last["parts"].append(part)
    else:
        contents.append({"role": "user", "parts": [part]})


def _text_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return [{"text": content or ""}]
    parts = []
    for j, part in enumerate(_list(content, f"{where}.content")):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind not in ("text", "refusal"):
            raise InvalidRequest(f"{where}.content[{j}]: only text parts are allowed here",
                                 param=f"{where}.content[{j}]")
        parts.append({"text": _str(part.get(kind), f"{where}.content[{j}].{kind}")})
    return parts or [{"text": ""}]


def _user_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return [{"text": content or ""}]
    parts = [_user_part(p, f"{where}.content[{j}]") for j, p in enumerate(_list(content, f"{where}.content"))]
    return parts or [{"text": ""}]


def _user_part(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, Mapping) else None
    if kind == "text":
        return {"text": _str(part.get("text"), f"{where}.text")}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        return media_part(_str(url, f"{where}.image_url.url"), f"{where}.image_url.url")
    if kind == "input_audio":
        audio = part.get("input_audio") if isinstance(part.get("input_audio"), Mapping) else {}
        mime = _AUDIO_TYPES.get(audio.get("format"))
        if mime is None:
            raise InvalidRequest(f"{where}.input_audio.format must be wav or mp3", param=f"{where}.input_audio")
        return {"inlineData": {"mimeType": mime, "data": _str(audio.get("data"), f"{where}.input_audio.data")}}
    if kind == "file":
        file = part.get("file") if isinstance(part.get("file"), Mapping) else {}
        ref = file.get("file_data") or file.get("file_id")
        return media_part(_str(ref, f"{where}.file.file_data"), f"{where}.file")
    raise InvalidRequest(f"{where}.type {kind!r}: Gemini models take text, image_url, input_audio and file parts",
                         param=f"{where}.type")


def media_part(url: str, where: str) -> dict[str, Any]:
    """A ``data:`` URL is sent inline; a ``gs://``/``http(s)://`` one by reference (``fileData``), with
    its type told by its extension: Gemini needs one, and the gateway does not fetch the URL for it."""
    if url.startswith("data:"):
        head, sep, data = url[5:].partition(",")
        mime, _, encoding = head.partition(";")
        if not sep or encoding != "base64" or not mime:
            raise InvalidRequest(f"{where}: a data: URL must be data:<type>;base64,<data>", param=where)
        return {"inlineData": {"mimeType": mime, "data": data}}
    if url.startswith(("https://", "http://", "gs://")):
        mime, _ = mimetypes.guess_type(url.split("?", 1)[0])
        if mime is None:
            raise InvalidRequest(f"{where}: the type of {url[:100]!r} cannot be told from its name; "
                                 "send it as a data: URL", param=where)
        return {"fileData": {"mimeType": mime, "fileUri": url}}
    raise InvalidRequest(f"{where}: a data:, https:// or gs:// URL expected", param=where)


def _model_parts(message: Mapping[str, Any], where: str, names: dict[str, str]) -> list[dict[str, Any]]:
    content = message.get("content")
    parts = [] if content is None or content == "" or content == [] else _text_parts(content, where)
    calls = message.get("tool_calls") or []
    for k, call in enumerate(_list(calls, f"{where}.tool_calls")):
        parts.append(_function_call(call, f"{where}.tool_calls[{k}]", names))
    legacy = message.get("function_call")
    if legacy:
        parts.append(_call_part(legacy, f"{where}.function_call", None))
    return parts or [{"text": ""}]


def _function_call(call: Any, where: str, names: dict[str, str]) -> dict[str, Any]:
    if not isinstance(call, Mapping):
        raise InvalidRequest(f"{where} must be an object", param=where)
    call_id = _str(call.get("id"), f"{where}.id")
    part = _call_part(call.get("function"), f"{where}.function", call_id)
    names[call_id] = part["functionCall"]["name"]
    return part


def _call_part(function: Any, where: str, call_id: str | None) -> dict[str, Any]:
    if not isinstance(function, Mapping):
        raise InvalidRequest(f"{where} must be an object", param=where)
    name = _str(function.get("name"), f"{where}.name")
    raw = function.get("arguments") or "{}"
    try:
        args = _decode(raw) if isinstance(raw, str | bytes) else None
    except msgspec.DecodeError:
        args = None
    if not isinstance(args, dict):
        raise InvalidRequest(f"{where}.arguments must be a JSON object for Gemini models", param=f"{where}.arguments")
    part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
    signature = split_call_id(call_id)[1] if call_id else None
    if signature:  # Gemini's thought signature, carried in the id we gave the call: it wants it back
        part["thoughtSignature"] = signature
    return part


def _function_response(message: Mapping[str, Any], where: str, names: dict[str, str]) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    name = names.get(call_id) if isinstance(call_id, str) else None
    name = name or message.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"{where}.tool_call_id matches no tool call of an earlier assistant message",
                             param=f"{where}.tool_call_id")
    text = "".join(p["text"] for p in _text_parts(message.get("content"), where))
    return {"functionResponse": {"name": name, "response": {"content": text}}}


# --- tools and inputs ---------------------------------------------------------------------------------


def _declaration(tool: Any, i: int) -> dict[str, Any]:
    where = f"tools[{i}]"
    function = tool.get("function") if isinstance(tool, Mapping) and tool.get("type") == "function" else None
    if not isinstance(function, Mapping):
        raise InvalidRequest(f"{where}: only function tools are supported by Gemini models", param=where)
    declaration: dict[str, Any] = {"name": _str(function.get("name"), f"{where}.function.name")}
    if isinstance(function.get("description"), str):
        declaration["description"] = function["description"]
    parameters = function.get("parameters")
    if parameters is not None:
        if not isinstance(parameters, Mapping):
            raise InvalidRequest(f"{where}.function.parameters must be an object", param=f"{where}.function.parameters")
        declaration["parametersJsonSchema"] = parameters  # JSON Schema as written, like responseJsonSchema
    return declaration


def _tool_choice(choice: Any) -> dict[str, Any]:
    if isinstance(choice, str) and choice in _TOOL_MODES:
        return {"mode": _TOOL_MODES[choice]}
    function = choice.get("function") if isinstance(choice, Mapping) else None
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str) or not name:
        raise InvalidRequest("tool_choice must be none, auto, required or a named function", param="tool_choice")
    return {"mode": "ANY", "allowedFunctionNames": [name]}


def _inputs(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(x, str) for x in raw):
        return raw
    raise InvalidRequest("input must be a string or a list of strings for Gemini embedding models "
                         "(token arrays are not supported)", param="input")


def _number(value: Any, where: str, integer: bool = False) -> Any:
    """A number Gemini's fields can hold (int32/int64 and double): else a 400, not an encoder's error."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not -_INT64 <= value < _INT64:
        raise InvalidRequest(f"{where} must be {'an integer' if integer else 'a number'}", param=where)
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidRequest(f"{where} must be an array", param=where)
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{where} must be a string", param=where)
    return value
