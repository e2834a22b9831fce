"""OpenAI chat completion chunks -> the Responses event stream, chunk by chunk.

The events and their order (platform.openai.com/docs/api-reference/responses-streaming):
``response.created``, ``response.in_progress``; per output item ``response.output_item.added``, for a
message ``response.content_part.added``, ``response.output_text.delta``... ``response.output_text.done``,
``response.content_part.done`` (``response.refusal.*`` likewise, and ``response.reasoning_text.*`` in a
``reasoning`` item), for a function call ``response.function_call_arguments.delta``... ``.done``;
``response.output_item.done``; last
``response.completed`` (``response.incomplete`` when cut by ``max_output_tokens``) with the whole response
and its usage. Every event carries ``sequence_number``; an error mid-stream is one ``error`` event.
Responses streams end with the last event, without chat's ``[DONE]``.

The ``openai`` SDK's stream helper rebuilds the response from these events and checks that item ids and
output indices stay the same from ``added`` to ``done`` to ``response.completed``, so items keep theirs.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.dialects.responses_answer import function_item, message_item, new_id, reasoning_item, response, text_part

_encode = msgspec.json.Encoder()
# A content part's kind: the item type holding it, its type, its text field, the prefix of its delta/done events.
_Kind = tuple[str, str, str, str]
_TEXT: _Kind = ("message", "output_text", "text", "response.output_text")
_REFUSAL: _Kind = ("message", "refusal", "refusal", "response.refusal")
_REASONING: _Kind = ("reasoning", "reasoning_text", "text", "response.reasoning_text")  # a thinking model's text


class ResponsesStream:
    """One streamed answer (``app.dialects.base.DialectStream``)."""

    def __init__(self, request: dict[str, Any]) -> None:
        self._request = request
        self._id = new_id("resp")
        self._created: Any = 0
        self._model: Any = request.get("model")
        self._seq = 0
        self._output: list[dict[str, Any]] = []  # items as they will be in response.completed
        self._message: dict[str, Any] | None = None  # the open item with content parts (message, reasoning)
        self._part: _Kind | None = None  # the kind of its open content part
        self._calls: dict[int, dict[str, Any]] = {}  # chat tool call index -> its function_call item
        self._open_call: dict[str, Any] | None = None
        self._finish: Any = None
        self._usage: Any = None
        self._started = self._ended = False

    # --- DialectStream ---------------------------------------------------------------------------

    def feed(self, chunk: dict[str, Any]) -> bytes:
        if self._ended:
            return b""
        out = [] if self._started else self._start(chunk)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        choices = chunk.get("choices") or ()
        for choice in choices[:1]:  # /v1/responses asks for one choice
            out.extend(self._choice(choice))
        return b"".join(out)

    def error(self, error: dict[str, Any]) -> bytes:
        out = [] if self._started else self._start({})
        self._ended = True
        out.append(self._event("error", {"code": error.get("code"), "message": str(error.get("message", "")),
                                         "param": error.get("param")}))
        return b"".join(out)

    def close(self) -> bytes:
        if self._ended:
            return b""
        out = [] if self._started else self._start({})
        out.extend(self._close_message())
        out.extend(self._close_call())
        self._ended = True
        final = response(self._request, self._id, self._created, self._model, self._output, self._finish,
                         self._usage)
        kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        out.append(self._event(kind, {"response": final}))
        return b"".join(out)

    # --- chunks ----------------------------------------------------------------------------------

    def _start(self, chunk: dict[str, Any]) -> list[bytes]:
        self._started = True
        self._created = chunk.get("created", 0)
        self._model = chunk.get("model") or self._model
        skeleton = response(self._request, self._id, self._created, self._model, [], None, None, "in_progress")
        return [self._event("response.created", {"response": skeleton}),
                self._event("response.in_progress", {"response": skeleton})]

    def _choice(self, choice: Any) -> list[bytes]:
        if not isinstance(choice, dict):
            return []
        delta = choice.get("delta") or {}
        out: list[bytes] = []
        if isinstance(delta.get("reasoning_content"), str) and delta["reasoning_content"]:
            out.extend(self._text(_REASONING, delta["reasoning_content"]))
        if isinstance(delta.get("content"), str) and delta["content"]:
            out.extend(self._text(_TEXT, delta["content"]))
        if isinstance(delta.get("refusal"), str) and delta["refusal"]:
            out.extend(self._text(_REFUSAL, delta["refusal"]))
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                out.extend(self._tool_call(call))
        if choice.get("finish_reason") is not None:
            self._finish = choice["finish_reason"]
        return out

    def _text(self, kind: _Kind, piece: str) -> list[bytes]:
        out = self._close_call()
        if self._message is not None and self._message["type"] != kind[0]:
            out.extend(self._close_message())
        if self._message is None:
            out.extend(self._open_message(kind[0]))
        if self._part is not kind:
            out.extend(self._close_part())
            out.extend(self._open_part(kind))
        part = self._message["content"][-1]  # type: ignore[index]  # opened just above
        part[kind[2]] += piece
        out.append(self._event(f"{kind[3]}.delta", {**self._where(), "delta": piece, **_logprobs(kind)}))
        return out

    def _tool_call(self, call: dict[str, Any]) -> list[bytes]:
        index = call.get("index", 0)
        function = call.get("function") or {}
        out: list[bytes] = []
        item = self._calls.get(index)
        if item is None:
            out.extend(self._close_message())
            out.extend(self._close_call())
            item = function_item(new_id("fc"), str(call.get("id") or ""), str(function.get("name") or ""),
                                 "in_progress")
            self._calls[index] = self._open_call = item
            out.append(self._added(item))
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments and item is self._open_call:
            item["arguments"] += arguments
            out.append(self._event("response.function_call_arguments.delta",
                                   {"item_id": item["id"], "output_index": self._index(item), "delta": arguments}))
        return out

    # --- items -----------------------------------------------------------------------------------

    def _open_message(self, kind: str) -> list[bytes]:
        if kind == "reasoning":
            self._message = reasoning_item(new_id("rs"), "in_progress", [])
        else:
            self._message = message_item(new_id("msg"), "in_progress", [])
        return [self._added(self._message)]

    def _open_part(self, kind: _Kind) -> list[bytes]:
        assert self._message is not None
        self._part = kind
        part = text_part("") if kind is _TEXT else {"type": kind[1], kind[2]: ""}
        self._message["content"].append(part)
        return [self._event("response.content_part.added", {**self._where(), "part": part})]

    def _close_part(self) -> list[bytes]:
        if self._part is None or self._message is None:
            return []
        kind, part = self._part, self._message["content"][-1]
        self._part = None
        done = {**self._where(), kind[2]: part[kind[2]], **_logprobs(kind)}
        return [self._event(f"{kind[3]}.done", done),
                self._event("response.content_part.done", {**self._where(), "part": part})]

    def _close_message(self) -> list[bytes]:
        if self._message is None:
            return []
        out = self._close_part()
        item, self._message = self._message, None
        return [*out, self._done(item)]

    def _close_call(self) -> list[bytes]:
        item, self._open_call = self._open_call, None
        if item is None:
            return []
        done = {"item_id": item["id"], "output_index": self._index(item), "name": item["name"],
                "arguments": item["arguments"]}
        return [self._event("response.function_call_arguments.done", done), self._done(item)]

    def _added(self, item: dict[str, Any]) -> bytes:
        self._output.append(item)
        return self._event("response.output_item.added", {"output_index": self._index(item), "item": item})

    def _done(self, item: dict[str, Any]) -> bytes:
        item["status"] = "incomplete" if self._finish in ("length", "content_filter") else "completed"
        return self._event("response.output_item.done", {"output_index": self._index(item), "item": item})

    def _where(self) -> dict[str, Any]:
        assert self._message is not None
        return {"item_id": self._message["id"], "output_index": self._index(self._message),
                "content_index": len(self._message["content"]) - 1}

    def _index(self, item: dict[str, Any]) -> int:
        return next(i for i, known in enumerate(self._output) if known is item)

    def _event(self, kind: str, fields: dict[str, Any]) -> bytes:
        data = _encode.encode({"type": kind, "sequence_number": self._seq, **fields})
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def _logprobs(kind: _Kind) -> dict[str, Any]:
    return {"logprobs": []} if kind is _TEXT else {}

