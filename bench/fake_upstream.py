"""A fast fake OpenAI upstream (and OTLP sink) for the speed bench.

It must never be the bottleneck of a measurement, so it is a raw asyncio ``Protocol`` with the
httptools parser on uvloop: no framework, no per-request task, no awaits. Response bodies are
built once per shape and cached as bytes; a request only swaps in a fresh id of fixed width, so
chunk lengths stay valid without re-encoding.

Routes (on every port it listens on):
- ``POST /v1/chat/completions``: JSON, or SSE when ``stream`` is true (10 content chunks, a finish
  chunk, a usage chunk only when ``stream_options.include_usage``, then ``data: [DONE]``).
- ``POST /v1/embeddings``: one vector per input, as floats or base64 (``encoding_format``).
- ``GET /v1/models``.
- ``POST /v1/traces|metrics|logs``: OTLP/HTTP sink, 200 with an empty protobuf response.
- ``POST /sink/...`` and ``/api/v2/logs``: the JSON destinations' sink (webhooks, Athina, OpenMeter,
  Datadog), 200 ``{}``.
- ``GET /stats``: request counters, so the bench can see that spans reached the sink.

Run alone: ``python bench/fake_upstream.py --port 0 --otlp-port 0`` prints one ``READY {json}``
line with the bound ports.
"""

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import struct
import sys
import time
from collections import Counter
from typing import Any, cast

import httptools

ID_WIDTH = 24
ID_PLACEHOLDER = "X" * ID_WIDTH
CONTENT_WORDS = ["This", " is", " a", " fast", " fake", " reply", " from", " the", " bench", " upstream."]
PROMPT_TOKENS = 42
CACHED_TOKENS = 0
EMBED_DIMS = 1536
EMBED_TOKENS_PER_INPUT = 8
MODELS = ["bench-chat", "bench-embed"]

JSON = b"application/json"
SSE = b"text/event-stream"
PROTOBUF = b"application/x-protobuf"


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _chat_usage(completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": completion_tokens,
        "total_tokens": PROMPT_TOKENS + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def chat_completion_body(model: str) -> bytes:
    """Non-streaming chat completion with the id left as the placeholder."""
    return _dumps(
        {
            "id": f"chatcmpl-{ID_PLACEHOLDER}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_bench",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(CONTENT_WORDS), "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _chat_usage(len(CONTENT_WORDS)),
        }
    ).encode()


def chat_stream_events(model: str, include_usage: bool) -> list[bytes]:
    """The SSE events of one streamed completion, as OpenAI sends them."""
    base = {
        "id": f"chatcmpl-{ID_PLACEHOLDER}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_bench",
    }
    extra = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice], **extra}

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
    chunks += [chunk({"content": word}, None) for word in CONTENT_WORDS]
    chunks.append(chunk({}, "stop"))
    if include_usage:
        chunks.append({**base, "choices": [], "usage": _chat_usage(len(CONTENT_WORDS))})
    events = [f"data: {_dumps(c)}\n\n".encode() for c in chunks]
    return [*events, b"data: [DONE]\n\n"]


def _vector(dims: int) -> list[float]:
    return [round(((i * 7919) % 2000) / 1000.0 - 1.0, 6) for i in range(dims)]


def embeddings_data(count: int, encoding_format: str, dims: int = EMBED_DIMS) -> bytes:
    """The ``data`` array for ``count`` inputs, already JSON-encoded."""
    vector = _vector(dims)
    if encoding_format == "base64":
        encoded: Any = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
    else:
        encoded = vector
    items = [{"object": "embedding", "index": i, "embedding": encoded} for i in range(count)]
    return _dumps(items).encode()


def _response(status: bytes, content_type: bytes, body: bytes, keep_alive: bool) -> bytes:
    head = b"HTTP/1.1 " + status + b"\r\ncontent-type: " + content_type
    head += b"\r\ncontent-length: " + str(len(body)).encode()
    head += b"\r\n\r\n" if keep_alive else b"\r\nconnection: close\r\n\r\n"
    return head + body


def _chunked(status: bytes, content_type: bytes, events: list[bytes], keep_alive: bool) -> bytes:
    head = b"HTTP/1.1 " + status + b"\r\ncontent-type: " + content_type
    head += b"\r\ncache-control: no-cache\r\ntransfer-encoding: chunked"
    head += b"\r\n\r\n" if keep_alive else b"\r\nconnection: close\r\n\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events)
    return head + body + b"0\r\n\r\n"


def _error(status: bytes, message: str, keep_alive: bool) -> bytes:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    return _response(status, JSON, _dumps({"error": error}).encode(), keep_alive)


def _chat_response(model: str, stream: bool, include_usage: bool, keep_alive: bool) -> bytes:
    if stream:
        return _chunked(b"200 OK", SSE, chat_stream_events(model, include_usage), keep_alive)
    return _response(b"200 OK", JSON, chat_completion_body(model), keep_alive)


class FakeOpenAI:
    """Routing and cached bodies, shared by every connection of one server."""

    def __init__(self) -> None:
        self.stats: Counter[str] = Counter()
        self._ids = itertools.count(1)
        self._cache: dict[tuple[Any, ...], bytes] = {}

    def _new_id(self) -> bytes:
        return b"%0*x" % (ID_WIDTH, next(self._ids))

    def handle(self, method: bytes, path: bytes, body: bytes, keep_alive: bool) -> bytes:
        route = (method, path.split(b"?", 1)[0])
        self.stats[f"{route[0].decode()} {route[1].decode()}"] += 1
        # Any path ending in an OTLP signal's: LangSmith's is /otel/v1/traces, Langfuse's /api/public/otel/v1/traces.
        if route[0] == b"POST" and route[1].endswith((b"/v1/traces", b"/v1/metrics", b"/v1/logs")):
            self.stats["otlp_bytes"] += len(body)
            return _response(b"200 OK", PROTOBUF, b"", keep_alive)
        # The JSON destinations' stand-ins: webhooks, Athina and OpenMeter under /sink/, Datadog's intake.
        if route[0] == b"POST" and (route[1].startswith(b"/sink/") or route[1] == b"/api/v2/logs"):
            self.stats["sink_bytes"] += len(body)
            return _response(b"200 OK", JSON, b"{}", keep_alive)
        if route == (b"POST", b"/v1/chat/completions"):
            return self._chat(body, keep_alive)
        if route == (b"POST", b"/v1/embeddings"):
            return self._embeddings(body, keep_alive)
        if route == (b"GET", b"/v1/models"):
            return self._models(keep_alive)
        if route == (b"GET", b"/stats"):
            return _response(b"200 OK", JSON, _dumps(dict(self.stats)).encode(), keep_alive)
        return _error(b"404 Not Found", f"no route {route[0].decode()} {route[1].decode()}", keep_alive)

    def _chat(self, body: bytes, keep_alive: bool) -> bytes:
        try:
            request = json.loads(body)
            model = str(request["model"])
        except (ValueError, KeyError, TypeError):
            return _error(b"400 Bad Request", "body must be JSON with a model", keep_alive)
        stream = bool(request.get("stream"))
        include_usage = stream and bool((request.get("stream_options") or {}).get("include_usage"))
        key = ("chat", model, stream, include_usage, keep_alive)
        template = self._cache.get(key)
        if template is None:
            template = self._cache[key] = _chat_response(model, stream, include_usage, keep_alive)
        return template.replace(ID_PLACEHOLDER.encode(), self._new_id())

    def _embeddings(self, body: bytes, keep_alive: bool) -> bytes:
        try:
            request = json.loads(body)
            model, inputs = str(request["model"]), request["input"]
        except (ValueError, KeyError, TypeError):
            return _error(b"400 Bad Request", "body must be JSON with model and input", keep_alive)
        is_batch = isinstance(inputs, list) and bool(inputs) and not isinstance(inputs[0], int)
        count = len(inputs) if is_batch else 1
        encoding_format = request.get("encoding_format") or "float"
        data = self._cache.get(("embed", count, encoding_format))
        if data is None:
            data = self._cache[("embed", count, encoding_format)] = embeddings_data(count, encoding_format)
        tokens = count * EMBED_TOKENS_PER_INPUT
        usage = _dumps({"prompt_tokens": tokens, "total_tokens": tokens}).encode()
        payload = b'{"object":"list","data":' + data + b',"model":' + _dumps(model).encode()
        return _response(b"200 OK", JSON, payload + b',"usage":' + usage + b"}", keep_alive)

    def _models(self, keep_alive: bool) -> bytes:
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "bench"} for m in MODELS]
        return _response(b"200 OK", JSON, _dumps({"object": "list", "data": data}).encode(), keep_alive)


class FakeOpenAIProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection: parse with httptools, answer synchronously, keep alive."""

    def __init__(self, app: FakeOpenAI) -> None:
        self._app = app
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.write(_error(b"400 Bad Request", "malformed HTTP", False))
                self._transport.close()

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        keep_alive = self._parser.should_keep_alive()
        response = self._app.handle(self._parser.get_method(), self._url, b"".join(self._body), keep_alive)
        self._url, self._body = b"", []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(response)
            if not keep_alive:
                self._transport.close()


class FakeServers:
    """The upstream server and, optionally, the OTLP sink on its own port."""

    def __init__(self, app: FakeOpenAI, servers: list[asyncio.Server]) -> None:
        self.app = app
        self._servers = servers
        self.port = servers[0].sockets[0].getsockname()[1]
        self.otlp_port = servers[1].sockets[0].getsockname()[1] if len(servers) > 1 else None

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()


async def serve(host: str = "127.0.0.1", port: int = 0, otlp_port: int | None = None,
                app: FakeOpenAI | None = None) -> FakeServers:
    """Start listening on the running loop; port 0 picks a free port. ``app``: routes of another fake
    built on this one (``native_fakes.py``)."""
    loop = asyncio.get_running_loop()
    app = app or FakeOpenAI()
    ports = [port] if otlp_port is None else [port, otlp_port]
    factory = lambda: FakeOpenAIProtocol(app)  # noqa: E731
    servers = [await loop.create_server(factory, host, p, backlog=1024) for p in ports]
    return FakeServers(app, servers)


async def _main(args: argparse.Namespace) -> None:
    servers = await serve(args.host, args.port, args.otlp_port)
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
