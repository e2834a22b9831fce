"""Request bodies checked before use, as OpenAI checks them: a 400 that names the field in ``param``.

Params are JSON paths (``messages[2].tool_calls[0].function``). Only fields OpenAI defines are
checked, and only when present and not null; unknown fields pass through untouched, because
providers have their own. Checks are tables from field name to a small function, driven by the
keys the body has, so a typical chat request costs a few dict lookups and type tests (~2-3 us for
three messages, see ``validate``).

Nesting is limited to ``MAX_DEPTH`` levels: msgspec's decoder recurses under Python's recursion
limit, so ~1000 levels raised RecursionError (a 500) here and in the span code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from app.calls.operations import Operation, facts
from app.errors import InvalidRequest
from app.gateway.jsonchecks import (
    INT64_MAX,
    Check,
    boolean,
    field,
    integer,
    invalid_value,
    is_number,
    list_of,
    missing,
    number,
    obj,
    one_of,
    optional,
    shown,
    string,
    wrong_type,
)

MAX_DEPTH = 64
ROLES = frozenset({"system", "user", "assistant", "tool", "function", "developer"})
TOOL_CHOICES = ("none", "auto", "required")
ENCODING_FORMATS = ("float", "base64")
MAX_STOP = 4
MAX_CHOICES = 128  # OpenAI's limits for n and best_of
MAX_BEST_OF = 20
MAX_DIMENSIONS = 16384  # OpenAI's largest model has 3072; a mock or a small upstream would build any size asked

_decode = msgspec.json.decode


# --- parsing and depth --------------------------------------------------------------------------


def parse_body(raw: bytes) -> dict[str, Any]:
    """The body as a dict, or a 400; nothing deeper than ``MAX_DEPTH`` reaches the decoder, whose
    own limit (Python's recursion limit, less the stack already in use) would vary by caller."""
    if not raw.strip():
        raise InvalidRequest("request body is empty; expected a JSON object", code="invalid_json")
    check_json_depth(raw)
    try:
        body = _decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object", code="invalid_json")
    return body


def check_json_depth(raw: bytes) -> None:
    """A 400 for a body nested deeper than ``MAX_DEPTH``, before any decoder recurses into it.
    Exact for valid JSON; malformed JSON gets this 400 or the decoder's."""
    if nested_deeper(raw, MAX_DEPTH):
        raise InvalidRequest(f"request body is nested more than {MAX_DEPTH} levels deep", code="invalid_value")


def nested_deeper(raw: bytes, limit: int) -> bool:
    """Whether the brackets of a JSON text (outside its strings) nest deeper than ``limit``.

    Without recursion, and in C but for one loop step per level. Depth is at most the number of
    opening brackets, so counting them (~0.2 us) spares almost every request the rest. Measured
    against walking the decoded value: 10 tools (2 KB) ~7 us vs ~15 us, a 30 KB token array
    ~15 us vs ~300 us (timeit, process time, loaded 2-core machine).
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    if b"\\" in raw:  # drop escapes (pairs first) so that every quote left delimits a string
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Only brackets and quotes kept, braces as brackets (valid JSON nests them properly). Adjacent
    # quotes go (an empty string, or two strings merged): most strings, in one C pass. Then the even
    # pieces of a split on quotes are what lies outside the strings that hold brackets.
    brackets = raw.translate(_BRACES_AS_BRACKETS, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in brackets:
        brackets = b"".join(brackets.split(b'"')[::2])
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")  # every innermost pair: one level off every branch
    return bool(brackets)


_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_BRACES_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")


# --- the request --------------------------------------------------------------------------------


def validate(operation: str, body: Mapping[str, Any]) -> None:
    """Every known field of ``body`` for ``operation``; raises ``InvalidRequest`` at the first fault.

    Measured (timeit, process time): a 3-message chat ~2 us, with 10 tools and a tool call ~7 us.
    """
    model = body.get("model")
    if model is None:
        raise InvalidRequest("missing required field 'model'", param="model", code="missing_required_parameter")
    if type(model) is not str or not model:
        raise InvalidRequest("'model' must be a non-empty string", param="model", code="invalid_type")
    required = facts(operation).required
    if required not in body:
        raise InvalidRequest(f"missing required field {required!r}", param=required,
                             code="missing_required_parameter")
    checks = _CHECKS[operation]
    for key, value in body.items():
        check = checks.get(key)
        if check is not None and (value is not None or key == required):
            check(value, key)


# --- messages -----------------------------------------------------------------------------------


def check_messages(value: Any, param: str) -> None:
    if type(value) is not list:
        raise wrong_type(param, "an array of messages", value)
    if not value:
        raise invalid_value(param, "expected at least one message.")
    for i, message in enumerate(value):
        check_message(message, f"{param}[{i}]")


def check_message(message: Any, param: str) -> None:
    if type(message) is not dict:
        raise wrong_type(param, "an object", message)
    role = message.get("role")
    if type(role) is not str or role not in ROLES:  # type first: a list or dict is not hashable
        if role is None:
            raise missing(f"{param}.role")
        if type(role) is not str:
            raise wrong_type(f"{param}.role", "a string", role)
        raise invalid_value(f"{param}.role", f"expected one of {', '.join(sorted(ROLES))}, got {shown(role)}.")
    content = message.get("content")
    if type(content) is not str:
        if content is not None:
            check_content(content, f"{param}.content")
        elif role not in _CONTENT_OPTIONAL:
            if "content" not in message:
                raise missing(f"{param}.content")
            raise wrong_type(f"{param}.content", "a string or an array of content parts", content)
    for key, value in message.items():
        check = _MESSAGE_FIELDS.get(key)
        if check is not None and value is not None:
            check(value, f"{param}.{key}")


def check_content(value: Any, param: str) -> None:
    if type(value) is not list:
        raise wrong_type(param, "a string or an array of content parts", value)
    if not value:
        raise invalid_value(param, "expected at least one content part.")
    for i, part in enumerate(value):
        where = f"{param}[{i}]"
        if type(part) is not dict:
            raise wrong_type(where, "an object", part)
        kind = part.get("type")
        if type(kind) is not str:
            raise missing(f"{where}.type") if kind is None else wrong_type(f"{where}.type", "a string", kind)
        check = _PART_FIELDS.get(kind)
        if check is not None:  # other part types are the provider's to judge
            field(part, kind, where, check)


def check_image_url(value: Any, param: str) -> None:
    if type(value) is str:  # LiteLLM's shorthand for {"url": ...}
        return
    if type(value) is not dict:
        raise wrong_type(param, "an object or a URL string", value)
    field(value, "url", param, string)
    optional(value, "detail", param, string)


def check_input_audio(value: Any, param: str) -> None:
    obj(value, param)
    field(value, "data", param, string)
    field(value, "format", param, string)


def check_file(value: Any, param: str) -> None:
    obj(value, param)
    for name in ("file_id", "file_data", "filename"):
        optional(value, name, param, string)


def check_tool_call(value: Any, param: str) -> None:
    if type(value) is dict and type(value.get("id")) is str and value.get("type") == "function" \
            and _is_call(value.get("function")):
        return  # the common case without building a path per field; the checks below name a fault
    obj(value, param)
    field(value, "id", param, string)
    field(value, "type", param, _function_type)
    field(value, "function", param, check_function_call)


def _is_call(value: Any) -> bool:
    return type(value) is dict and type(value.get("name")) is str and type(value.get("arguments")) is str


def check_function_call(value: Any, param: str) -> None:
    obj(value, param)
    field(value, "name", param, string)
    field(value, "arguments", param, string)


_CONTENT_OPTIONAL = frozenset({"assistant", "function"})  # tool calls, refusals and audio answers have none
_PART_FIELDS: dict[str, Check] = {"text": string, "image_url": check_image_url, "input_audio": check_input_audio,
                                  "file": check_file, "refusal": string}
_MESSAGE_FIELDS: dict[str, Check] = {"name": string, "tool_call_id": string, "refusal": string,
                                     "tool_calls": list_of(check_tool_call), "function_call": check_function_call}


# --- tools and formats --------------------------------------------------------------------------


def check_tool(value: Any, param: str) -> None:
    if type(value) is dict and value.get("type") == "function" and _is_definition(value.get("function")):
        return  # as in check_tool_call: ~1 us a tool saved
    obj(value, param)
    field(value, "type", param, string)
    if value["type"] == "function":  # other tool types (OpenAI's custom tools, providers' own) pass through
        field(value, "function", param, check_function_definition)


def check_function_definition(value: Any, param: str) -> None:
    obj(value, param)
    field(value, "name", param, string)
    optional(value, "description", param, string)
    optional(value, "parameters", param, obj)
    optional(value, "strict", param, boolean)


def _is_definition(value: Any) -> bool:
    if type(value) is not dict or type(value.get("name")) is not str:
        return False
    description, parameters, strict = value.get("description"), value.get("parameters"), value.get("strict")
    return (description is None or type(description) is str) and (parameters is None or type(parameters) is dict) \
        and (strict is None or type(strict) is bool)


def check_named_function(value: Any, param: str) -> None:
    obj(value, param)
    field(value, "name", param, string)


def check_tool_choice(value: Any, param: str) -> None:
    if type(value) is str:
        _tool_choice_name(value, param)
        return
    if type(value) is not dict:
        raise wrong_type(param, "a string or an object", value)
    field(value, "type", param, string)
    if value["type"] == "function":
        field(value, "function", param, check_named_function)


def check_function_choice(value: Any, param: str) -> None:
    """The deprecated ``function_call``: "none", "auto" or {"name": ...}."""
    if type(value) is str:
        _function_choice_name(value, param)
    else:
        check_named_function(value, param)


def check_response_format(value: Any, param: str) -> None:
    obj(value, param)
    field(value, "type", param, string)
    if value["type"] == "json_schema":
        field(value, "json_schema", param, check_named_function)


def check_stop(value: Any, param: str) -> None:
    if type(value) is not str:
        _stop_list(value, param)


def check_logit_bias(value: Any, param: str) -> None:
    obj(value, param)
    for token, bias in value.items():
        if not is_number(bias):
            raise wrong_type(f"{param}.{token}", "a number", bias)
        if not -100 <= bias <= 100:
            raise invalid_value(f"{param}.{token}", f"expected a number from -100 to 100, got {shown(bias)}.")


def check_stream_options(value: Any, param: str) -> None:
    obj(value, param)
    optional(value, "include_usage", param, boolean)


_function_type = one_of("function")
_tool_choice_name = one_of(*TOOL_CHOICES)
_function_choice_name = one_of("none", "auto")
_stop_list = list_of(string, max_items=MAX_STOP, expected="a string or an array of strings")


# --- prompts and embedding inputs ---------------------------------------------------------------

# msgspec checks long token arrays ~3x faster than a loop here (20 x 500 tokens: ~100 us vs ~300 us)
_Token = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
_TEXTS_OR_TOKENS = "a string, an array of strings, an array of integers or an array of integer arrays"


def texts_or_tokens(*, allow_empty: bool) -> Check:
    """``input`` / ``prompt``: one text, texts, one token array or token arrays; never mixed."""
    text = str if allow_empty else Annotated[str, msgspec.Meta(min_length=1)]
    fast_shapes = {str: list[text], int: list[_Token], list: list[Annotated[list[_Token], msgspec.Meta(min_length=1)]]}

    def check(value: Any, param: str) -> None:
        if type(value) is str:
            if not value and not allow_empty:
                raise invalid_value(param, "expected a non-empty string.")
            return
        if type(value) is not list:
            raise wrong_type(param, _TEXTS_OR_TOKENS, value)
        if not value:
            raise invalid_value(param, "expected at least one item.")
        kind = type(value[0])
        if kind not in fast_shapes:
            raise wrong_type(f"{param}[0]", _TEXTS_OR_TOKENS, value[0])
        with contextlib.suppress(msgspec.ValidationError):  # the common case, in C; the loops below name the fault
            msgspec.convert(value, fast_shapes[kind])
            return
        if kind is int:
            _check_tokens(value, param)
            return
        for i, item in enumerate(value):
            where = f"{param}[{i}]"
            if type(item) is not kind:
                raise wrong_type(where, "a string" if kind is str else "an array of integers", item)
            if kind is list:
                if not item:
                    raise invalid_value(where, "expected at least one token.")
                _check_tokens(item, where)
            elif not item and not allow_empty:
                raise invalid_value(where, "expected a non-empty string.")
    return check


def _check_tokens(tokens: list[Any], param: str) -> None:
    for i, token in enumerate(tokens):
        _token(token, f"{param}[{i}]")


_token = integer(0)


# --- the tables ---------------------------------------------------------------------------------

_SAMPLING: dict[str, Check] = {
    "stream": boolean, "stream_options": check_stream_options, "user": string, "metadata": obj,
    "n": integer(1, MAX_CHOICES), "max_tokens": integer(0), "temperature": number(0, 2), "top_p": number(0, 1),
    "presence_penalty": number(-2, 2), "frequency_penalty": number(-2, 2), "logit_bias": check_logit_bias,
    "seed": integer(-INT64_MAX - 1), "stop": check_stop,
}
CHAT_CHECKS: dict[str, Check] = {
    **_SAMPLING, "messages": check_messages, "max_completion_tokens": integer(0), "logprobs": boolean,
    "top_logprobs": integer(0, 20), "tools": list_of(check_tool), "tool_choice": check_tool_choice,
    "parallel_tool_calls": boolean, "response_format": check_response_format,
    "functions": list_of(check_function_definition), "function_call": check_function_choice,
}
COMPLETION_CHECKS: dict[str, Check] = {
    **_SAMPLING, "prompt": texts_or_tokens(allow_empty=True), "logprobs": integer(0, 5), "echo": boolean,
    "best_of": integer(1, MAX_BEST_OF), "suffix": string,
}
EMBEDDING_CHECKS: dict[str, Check] = {
    "input": texts_or_tokens(allow_empty=False), "dimensions": integer(1, MAX_DIMENSIONS),
    "encoding_format": one_of(*ENCODING_FORMATS), "user": string, "metadata": obj,
}
# Validation's own per-operation fact (the checks are the gateway's, below it nobody needs them);
# every other one is in ``app.calls.operations``.
_CHECKS: dict[str, dict[str, Check]] = {Operation.CHAT: CHAT_CHECKS, Operation.TEXT_COMPLETION: COMPLETION_CHECKS,
                                        Operation.EMBEDDINGS: EMBEDDING_CHECKS}
