"""Schema-like hypothesis strategies for OpenAI chat and embeddings request bodies, valid and bad.

Any field, at any depth, is sometimes junk (wrong types, negative and huge numbers, nulls, unicode,
20000-deep nesting); ``mutate`` then sometimes drops or adds a field. ``encode`` turns a body into
the bytes to send (deep nesting is spliced in there: ``json.dumps`` itself recurses).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

CHAT_MODEL, EMBEDDING_MODEL = "m", "e"
DEEP_MARKER = "\u0000deep\u0000"  # a string stand-in, swapped for raw nesting after json.dumps (which recurses)
DEEP = b"[" * 20_000 + b"]" * 20_000  # hypothesis raises the recursion limit while it runs: 990 levels may decode

# --- bodies: each field usually valid, sometimes junk -----------------------------------------------

junk = st.one_of(  # deep nesting first: one_of draws its first branches more often
    st.just(DEEP_MARKER), st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63, max_value=10**400),
    st.integers(max_value=-1), st.floats(allow_nan=False, allow_infinity=False), st.text(), st.just(""),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.text(), max_size=2),
)


def v(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The field's valid values nine times in ten, junk otherwise: deep fields get their turn too."""
    return st.sampled_from(range(10)).flatmap(lambda i: junk if i == 9 else valid)  # one_of merges repeats


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
    return v(st.fixed_dictionaries({k: v(s) for k, s in required.items()},
                                   optional={k: v(s) for k, s in (optional or {}).items()}))


def array(item: st.SearchStrategy[Any], min_size: int = 0, max_size: int = 3) -> st.SearchStrategy[Any]:
    return v(st.lists(v(item), min_size=min_size, max_size=max_size))


text = st.text(max_size=12)
name = st.text(alphabet="abcdefghij_", min_size=1, max_size=8)
tool_call = obj({"id": name, "type": st.just("function"), "function": obj({"name": name, "arguments": text})})
part = st.one_of(
    obj({"type": st.just("text"), "text": text}),
    obj({"type": st.just("image_url"),
         "image_url": st.one_of(st.just("https://example.test/a.png"), obj({"url": st.just("data:,AA")}))}),
    obj({"type": st.just("input_audio"), "input_audio": obj({"data": st.just("AAAA"), "format": st.just("wav")})}),
    obj({"type": st.just("file"), "file": obj({"file_id": name})}),
)
content = st.one_of(text, array(part, min_size=1))
message = st.one_of(
    obj({"role": st.sampled_from(["system", "developer", "user"]), "content": content}, {"name": name}),
    obj({"role": st.just("assistant"), "content": st.one_of(st.none(), text)},
        {"tool_calls": array(tool_call, min_size=1, max_size=2)}),
    obj({"role": st.just("tool"), "tool_call_id": name, "content": text}),
)
tool = obj({"type": st.just("function"), "function": obj(
    {"name": name}, {"description": text, "parameters": st.just({"type": "object", "properties": {}})})})
chat_body = st.fixed_dictionaries(
    {"model": v(st.just(CHAT_MODEL)), "messages": array(message, min_size=1, max_size=4)},
    optional={k: v(s) for k, s in {
        "temperature": st.floats(0, 2), "top_p": st.floats(0, 1), "n": st.integers(1, 3),
        "max_tokens": st.integers(0, 4096), "max_completion_tokens": st.integers(0, 4096),
        "presence_penalty": st.floats(-2, 2), "frequency_penalty": st.floats(-2, 2), "seed": st.integers(),
        "stop": st.one_of(text, array(text, max_size=4)), "stream": st.booleans(), "user": text,
        "tools": array(tool, min_size=1, max_size=2), "tool_choice": st.sampled_from(["none", "auto", "required"]),
        "response_format": obj({"type": st.just("json_object")}), "logit_bias": st.just({"50256": -100}),
        "logprobs": st.booleans(), "metadata": st.dictionaries(name, text, max_size=2),
    }.items()})
tokens = st.lists(v(st.integers(0, 100_000)), min_size=1, max_size=5)
embeddings_body = st.fixed_dictionaries(
    {"model": v(st.just(EMBEDDING_MODEL)),
     "input": v(st.one_of(st.text(min_size=1), array(st.text(min_size=1), min_size=1), tokens,
                          st.lists(tokens, min_size=1, max_size=3)))},
    optional={"dimensions": v(st.integers(1, 3072)), "encoding_format": v(st.sampled_from(["float", "base64"])),
              "user": v(text)})

# --- and then a field dropped or added ----------------------------------------------------------


def locations(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into a JSON value (the root excluded)."""
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield (*path, key)
        yield from locations(child, (*path, key))


def mutate(body: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    body = copy.deepcopy(body)
    for _ in range(data.draw(st.integers(0, 1), label="mutations")):
        paths = list(locations(body))
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans(), label="delete"):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.text(max_size=6), label="new key")] = data.draw(junk, label="junk")
    return body


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode().replace(json.dumps(DEEP_MARKER).encode(), DEEP)
