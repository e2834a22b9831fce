"""Fast fakes of the native providers' APIs for the providers bench, beside the OpenAI fake.

The same raw asyncio server as ``fake_upstream.py`` (it serves the OpenAI routes and the OTLP sink
too), with each native answer built once and cached as bytes: the bench measures the gateway's
translation, never the fake. Answers carry the same text and token counts as the OpenAI fake's (10
words, 42 prompt tokens), streamed in 10 pieces, so the paths compare like for like.

- Anthropic: ``POST /v1/messages`` (a Message, or its event stream when ``stream`` is true).
- Gemini: ``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``.
- Bedrock: ``POST /model/{id}/converse`` and ``/converse-stream`` (AWS event-stream framing).

Run alone: ``python bench/native_fakes.py --port 0 --otlp-port 0`` prints ``READY {json}``.
"""

import argparse
import asyncio
import binascii
import contextlib
import json
import struct
import sys
from typing import Any

from fake_upstream import (
    CONTENT_WORDS,
    ID_PLACEHOLDER,
    JSON,
    PROMPT_TOKENS,
    SSE,
    FakeOpenAI,
    _chunked,
    _dumps,
    _error,
    _response,
    serve,
)

TEXT = "".join(CONTENT_WORDS)
OUTPUT_TOKENS = len(CONTENT_WORDS)
EVENT_STREAM = b"application/vnd.amazon.eventstream"


# --- Anthropic -----------------------------------------------------------------------------------


def _anthropic_usage(output: int) -> dict[str, int]:
    return {"input_tokens": PROMPT_TOKENS, "output_tokens": output, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0}


def anthropic_message(model: str) -> bytes:
    return _dumps({"id": f"msg_{ID_PLACEHOLDER}", "type": "message", "role": "assistant", "model": model,
                   "content": [{"type": "text", "text": TEXT}], "stop_reason": "end_turn", "stop_sequence": None,
                   "usage": _anthropic_usage(OUTPUT_TOKENS)}).encode()


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {_dumps({'type': kind, **data})}\n\n".encode()


def anthropic_events(model: str) -> list[bytes]:
    start = {"id": f"msg_{ID_PLACEHOLDER}", "type": "message", "role": "assistant", "model": model, "content": [],
             "stop_reason": None, "stop_sequence": None, "usage": _anthropic_usage(1)}
    events = [_event("message_start", {"message": start}),
              _event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})]
    events += [_event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": w}})
               for w in CONTENT_WORDS]
    return [*events, _event("content_block_stop", {"index": 0}),
            _event("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                     "usage": {"output_tokens": OUTPUT_TOKENS}}),
            _event("message_stop", {})]


# --- Gemini --------------------------------------------------------------------------------------


def _gemini(model: str, text: str, last: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    usage = {"promptTokenCount": PROMPT_TOKENS, "totalTokenCount": PROMPT_TOKENS}
    if last:
        candidate["finishReason"] = "STOP"
        usage = {"promptTokenCount": PROMPT_TOKENS, "candidatesTokenCount": OUTPUT_TOKENS,
                 "totalTokenCount": PROMPT_TOKENS + OUTPUT_TOKENS}
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": ID_PLACEHOLDER}


def gemini_answer(model: str) -> bytes:
    return _dumps(_gemini(model, TEXT, True)).encode()


def gemini_events(model: str) -> list[bytes]:
    last = len(CONTENT_WORDS) - 1
    return [b"data: " + _dumps(_gemini(model, w, i == last)).encode() + b"\r\n\r\n"
            for i, w in enumerate(CONTENT_WORDS)]


# --- Bedrock -------------------------------------------------------------------------------------


def bedrock_answer() -> bytes:
    return _dumps({"output": {"message": {"role": "assistant", "content": [{"text": TEXT}]}},
                   "stopReason": "end_turn", "metrics": {"latencyMs": 1},
                   "usage": {"inputTokens": PROMPT_TOKENS, "outputTokens": OUTPUT_TOKENS,
                             "totalTokens": PROMPT_TOKENS + OUTPUT_TOKENS}}).encode()


def event_message(event_type: str, payload: dict[str, Any]) -> bytes:
    """One AWS event-stream message: prelude (lengths, CRC), string headers, payload, message CRC."""
    headers = b""
    for name, value in ((":event-type", event_type), (":content-type", "application/json"),
                        (":message-type", "event")):
        headers += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value)) + value.encode()
    body = _dumps(payload).encode()
    prelude = struct.pack(">II", 16 + len(headers) + len(body), len(headers))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + headers + body
    return message + struct.pack(">I", binascii.crc32(message))


def bedrock_events() -> bytes:
    events = [event_message("messageStart", {"role": "assistant"})]
    events += [event_message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": w}})
               for w in CONTENT_WORDS]
    events += [event_message("contentBlockStop", {"contentBlockIndex": 0}),
               event_message("messageStop", {"stopReason": "end_turn"}),
               event_message("metadata", {"usage": {"inputTokens": PROMPT_TOKENS, "outputTokens": OUTPUT_TOKENS,
                                                    "totalTokens": PROMPT_TOKENS + OUTPUT_TOKENS},
                                          "metrics": {"latencyMs": 1}})]
    return b"".join(events)


# --- the server ------------------------------------------------------------------------------------


class NativeFakes(FakeOpenAI):
    """The OpenAI fake's routes, and the native ones, each answer cached per (route, model, stream)."""

    def handle(self, method: bytes, path: bytes, body: bytes, keep_alive: bool) -> bytes:
        route = path.split(b"?", 1)[0]
        if method == b"POST" and (route == b"/v1/messages" or route.startswith((b"/v1beta/models/", b"/model/"))):
            self.stats[f"POST {route.decode()}"] += 1
            return self._native(route, body, keep_alive)
        return super().handle(method, path, body, keep_alive)

    def _native(self, route: bytes, body: bytes, keep_alive: bool) -> bytes:
        try:
            request = json.loads(body)
        except ValueError:
            return _error(b"400 Bad Request", "body must be JSON", keep_alive)
        key = (route, bool(request.get("stream")), request.get("model"), keep_alive)
        template = self._cache.get(key)
        if template is None:
            template = self._cache[key] = _native_answer(route, request, keep_alive)
        return template.replace(ID_PLACEHOLDER.encode(), self._new_id())


def _native_answer(route: bytes, request: dict[str, Any], keep_alive: bool) -> bytes:
    if route == b"/v1/messages":
        model = str(request.get("model"))
        if request.get("stream"):
            return _chunked(b"200 OK", SSE, anthropic_events(model), keep_alive)
        return _response(b"200 OK", JSON, anthropic_message(model), keep_alive)
    if route.startswith(b"/v1beta/models/"):
        model, _, method = route.removeprefix(b"/v1beta/models/").decode().partition(":")
        if method == "streamGenerateContent":
            return _chunked(b"200 OK", SSE, gemini_events(model), keep_alive)
        return _response(b"200 OK", JSON, gemini_answer(model), keep_alive)
    if route.endswith(b"/converse-stream"):
        return _chunked(b"200 OK", EVENT_STREAM, [bedrock_events()], keep_alive)
    return _response(b"200 OK", JSON, bedrock_answer(), keep_alive)


async def _main(args: argparse.Namespace) -> None:
    servers = await serve(args.host, args.port, args.otlp_port, app=NativeFakes())
    print("READY " + json.dumps({"port": servers.port, "otlp_port": servers.otlp_port}), flush=True)
    await asyncio.Event().wait()  # until killed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--otlp-port", type=int, default=None)
    args = parser.parse_args()
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # still correct, only slower
        print("uvloop not installed: using the default asyncio loop", file=sys.stderr)
        runner = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(_main(args))


if __name__ == "__main__":
    main()
