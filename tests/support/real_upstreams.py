"""The fake OpenAI upstream served by real HTTP server implementations, each on its own loopback port.

One dispatch (``reply``) answers chat (JSON, or SSE when ``stream``) and embeddings with the answer
builders of ``tests/support/upstream.py``; each server only frames it its own way:

- ``uvicorn_upstream``: an ASGI app on uvicorn (h11/httptools; a stream is chunked);
- ``aiohttp_upstream``: aiohttp's web server (``StreamResponse``: chunked);
- ``http_server_upstream``: ``http.server.ThreadingHTTPServer``, HTTP/1.1 with keep-alive
  (Content-Length, streams chunked by hand); under ``/close/`` it answers as an HTTP/1.0 server
  would: an HTTP/1.0 status line, no Content-Length, no chunking, the body ends when the
  connection closes.

Embedding vectors echo their input (one float per character code), so a caller can tell that the
vector it got was computed for its own text.

    with uvicorn_upstream() as base_url:   # http://127.0.0.1:PORT
        ...
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import uvicorn
from aiohttp import web

from tests.support.gateway import free_socket
from tests.support.upstream import chat, chat_events

CLOSE_PREFIX = "/close"
START_TIMEOUT = 10.0


@dataclass(frozen=True)
class Reply:
    status: int
    json: Any = None  # a JSON answer, or
    events: tuple[bytes, ...] = ()  # the SSE events of a stream

    @property
    def content_type(self) -> str:
        return "text/event-stream" if self.events else "application/json"

    def body(self) -> bytes:
        return b"".join(self.events) if self.events else json.dumps(self.json).encode()


def echo_embeddings(body: dict[str, Any]) -> dict[str, Any]:
    inputs = body.get("input")
    texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
    data = [{"object": "embedding", "index": i, "embedding": [float(ord(c)) for c in text]}
            for i, text in enumerate(texts)]
    usage = {"prompt_tokens": 5, "total_tokens": 5}
    return {"object": "list", "data": data, "model": body.get("model"), "usage": usage}


def decode_echo(vector: list[float]) -> str:
    return "".join(chr(int(x)) for x in vector)


def reply(path: str, raw: bytes) -> Reply:
    body = json.loads(raw) if raw else {}
    if path.endswith("/v1/embeddings"):
        return Reply(200, echo_embeddings(body))
    if path.endswith("/v1/chat/completions"):
        return Reply(200, events=tuple(chat_events(body))) if body.get("stream") else Reply(200, chat(body))
    return Reply(404, {"error": {"message": f"no route {path}", "type": "invalid_request_error", "param": None,
                                 "code": None}})


# --- uvicorn -------------------------------------------------------------------------------------


async def asgi_app(scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                   send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    if scope["type"] != "http":  # lifespan: nothing to set up
        message = await receive()
        await send({"type": f"{message['type']}.complete"})
        return
    raw = b""
    while True:
        message = await receive()
        raw += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = reply(scope["path"], raw)
    headers = [(b"content-type", answer.content_type.encode())]
    if not answer.events:
        headers.append((b"content-length", b"%d" % len(answer.body())))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    for event in answer.events or (answer.body(),):
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


@contextmanager
def uvicorn_upstream() -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(asgi_app, lifespan="off", log_level="warning", access_log=False))
    sock = free_socket()
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-upstream", daemon=True)
    thread.start()
    try:
        started = threading.Event()
        for _ in range(int(START_TIMEOUT / 0.01)):
            if server.started:
                break
            started.wait(0.01)
        assert server.started, "uvicorn upstream did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()


# --- aiohttp -------------------------------------------------------------------------------------


async def aiohttp_handler(request: web.Request) -> web.StreamResponse:
    answer = reply(request.path, await request.read())
    if not answer.events:
        return web.Response(status=answer.status, body=answer.body(), content_type=answer.content_type)
    response = web.StreamResponse(status=answer.status, headers={"Content-Type": answer.content_type})
    await response.prepare(request)
    for event in answer.events:
        await response.write(event)
    await response.write_eof()
    return response


@contextmanager
def aiohttp_upstream() -> Iterator[str]:
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/{tail:.*}", aiohttp_handler)
    runner = web.AppRunner(app, access_log=None)
    sock = free_socket()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.SockSite(runner, sock).start())
    thread = threading.Thread(target=loop.run_forever, name="aiohttp-upstream", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(START_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(START_TIMEOUT)
        loop.close()
        sock.close()


# --- http.server ---------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        close_delimited = self.path.startswith(CLOSE_PREFIX + "/")
        answer = reply(self.path, raw)
        if close_delimited:
            self.protocol_version = "HTTP/1.0"  # this answer's status line
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        if close_delimited:
            self.send_header("Connection", "close")
            self.close_connection = True
        elif answer.events:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(answer.body())))
        self.end_headers()
        for part in answer.events or (answer.body(),):
            self.wfile.write(part if close_delimited or not answer.events else b"%x\r\n%b\r\n" % (len(part), part))
            self.wfile.flush()
        if answer.events and not close_delimited:
            self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-answer


@contextmanager
def http_server_upstream() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="http-server-upstream",
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
