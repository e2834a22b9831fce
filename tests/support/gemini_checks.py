"""What Google's Gemini API refuses with a 400, as the fake (``tests.support.fake_gemini``) checks it.

Each check returns the problem in the API's words, or None. Only fields the API defines are
accepted (the real API answers ``Invalid JSON payload received. Unknown name "x"``).
"""

from __future__ import annotations

from typing import Any

_TOP = {"contents", "systemInstruction", "generationConfig", "tools", "toolConfig", "safetySettings",
        "cachedContent"}
_GENERATION = {"temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "candidateCount", "seed",
               "presencePenalty", "frequencyPenalty", "responseMimeType", "responseSchema", "responseJsonSchema",
               "thinkingConfig", "responseLogprobs", "logprobs"}
_DATA = {"text", "inlineData", "fileData", "functionCall", "functionResponse"}
_PART_EXTRA = {"thought", "thoughtSignature"}
_MODES = {"AUTO", "ANY", "NONE", "VALIDATED"}


def unknown(obj: dict[str, Any], known: set[str], where: str) -> str | None:
    extra = sorted(set(obj) - known)
    return f'Invalid JSON payload received. Unknown name "{extra[0]}" at \'{where}\'' if extra else None


def check_generate(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the request is not a JSON object"
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    problems = [unknown(body, _TOP, ""), unknown(body.get("generationConfig") or {}, _GENERATION, "generation_config"),
                _system(body.get("systemInstruction")), _tools(body), _turns(contents)]
    return next((p for p in problems if p), None)


def _system(system: Any) -> str | None:
    if system is None:
        return None
    parts = system.get("parts") if isinstance(system, dict) else None
    if not isinstance(parts, list) or not parts or any(set(p) != {"text"} for p in parts):
        return "systemInstruction: only text parts are allowed"
    return None


def _turns(contents: list[Any]) -> str | None:
    calls = 0
    for i, content in enumerate(contents):
        if content.get("role") not in ("user", "model"):
            return f"Please use a valid role: user, model. (contents[{i}])"
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
        problem = next((p for p in (_part(part, f"contents[{i}].parts[{j}]") for j, part in enumerate(parts)) if p),
                       None)
        if problem:
            return problem
        responses = sum("functionResponse" in p for p in parts)
        if responses and responses != calls:
            return ("Please ensure that the number of function response parts is equal to the number of "
                    "function call parts of the function call turn.")
        calls = sum("functionCall" in p for p in parts) if content["role"] == "model" else 0
    return None


def _part(part: Any, where: str) -> str | None:
    if not isinstance(part, dict):
        return f"{where}: not an object"
    data = set(part) & _DATA
    if len(data) != 1 or set(part) - _DATA - _PART_EXTRA:
        return f"{where}: a part holds exactly one of {sorted(_DATA)}"
    kind = data.pop()
    if kind == "text" and not isinstance(part["text"], str):
        return f"{where}.text: not a string"
    if kind in ("inlineData", "fileData") and not part[kind].get("mimeType"):
        return f"{where}.{kind}.mimeType: required"
    if kind == "functionCall" and not isinstance(part["functionCall"].get("args", {}), dict):
        return f"{where}.functionCall.args: not an object"
    if kind == "functionResponse" and not (part["functionResponse"].get("name")
                                           and isinstance(part["functionResponse"].get("response"), dict)):
        return f"{where}.functionResponse: name and response (an object) required"
    return None


def _tools(body: dict[str, Any]) -> str | None:
    for tool in body.get("tools") or []:
        for declaration in tool.get("functionDeclarations") or []:
            if not declaration.get("name"):
                return "tools[].functionDeclarations[].name: required"
            if "parameters" in declaration and "parametersJsonSchema" in declaration:
                return "parameters and parametersJsonSchema are mutually exclusive"
    config = (body.get("toolConfig") or {}).get("functionCallingConfig")
    if config is not None and config.get("mode", "AUTO") not in _MODES:
        return f"toolConfig.functionCallingConfig.mode: invalid value {config.get('mode')!r}"
    return None


def check_embed(body: Any) -> str | None:
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        return "* BatchEmbedContentsRequest.requests: requests is not specified"
    for i, request in enumerate(requests):
        if not str(request.get("model", "")).startswith("models/"):
            return f"requests[{i}].model: must be models/<model>"
        parts = (request.get("content") or {}).get("parts")
        if not parts or any(set(p) != {"text"} for p in parts):
            return f"requests[{i}].content.parts: text parts required"
    return None
