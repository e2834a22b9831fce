"""A loopback fake OpenAI upstream: chat (JSON and SSE), completions, embeddings, Responses (JSON), scripted faults.

Every request is recorded (path, headers, parsed JSON body) so tests can check what the gateway
forwarded. Answers are deterministic. Faults are queued per request with ``script`` (one
``Behaviour`` per coming request, then back to ``default``):

    with FakeOpenAI() as upstream:
        upstream.script(Behaviour(status=500), Behaviour(delay=2.0))

``Behaviour(status>=400)`` answers with an OpenAI error body whose message contains an
``sk-...`` key, as OpenAI's own 401 does, so tests can check that the gateway scrubs it.
``Behaviour(body=...)`` answers with those bytes instead (``chunked`` for no Content-Length), and
``Behaviour(events=...)`` streams those SSE writes instead of the generated ones.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LEAKED_KEY = "sk-proj-LEAKEDabcdef1234567890"
RESPONSE_MODEL_SUFFIX = "-2024-07-18"
USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18,
         "prompt_tokens_details": {"cached_tokens": 2}, "completion_tokens_details": {"reasoning_tokens": 3}}
EMBEDDING_DIMS = 8
_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 429: "rate_limit_exceeded"}
_ERROR_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded"}


@dataclass(frozen=True)
class Behaviour:
    status: int = 200
    delay: float = 0.0  # before the status line: longer than the deployment's timeout means 504
    chunk_delay: float = 0.0  # between SSE events of a stream
    message: str | None = None  # error message; defaults to one that leaks LEAKED_KEY
    body: bytes | None = None  # the answer's bytes as they are, with ``status``
    chunked: bool = False  # send ``body`` with Transfer-Encoding: chunked instead of a Content-Length
    events: tuple[bytes, ...] | None = None  # a stream's writes (one HTTP chunk each), for stream requests
    retry_after: str | None = None  # an error answer's Retry-After header, as written


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)


def answer_text(body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{"content": body.get("prompt")}]
    return f"fake says: {messages[-1].get('content')}"


def closed_port() -> int:
    """A loopback port nobody listens on (connect gets ECONNREFUSED)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeOpenAI:
    def __init__(self, default: Behaviour | None = None) -> None:
        self.default = default or Behaviour()
        self.requests: list[Received] = []
        self._script: deque[Behaviour] = deque()
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for the serve loop's next poll (0.5 s by default).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-openai", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_base(self) -> str:
        return self.url + "/v1"

    def script(self, *behaviours: Behaviour) -> None:
        with self._cond:
            self._script.extend(behaviours)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"fake upstream got {len(self.requests)} requests, expected {count}")
            return list(self.requests)

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()  # wakes handlers sleeping in a delay so they end promptly
        self._server.shutdown()
        self._server.server_close()

    # --- called by the handler thread ---------------------------------------------------------

    def _record(self, request: Received) -> Behaviour:
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()
            return self._script.popleft() if self._script else self.default

    def _sleep(self, seconds: float) -> bool:
        """False when the fake is closing: stop answering."""
        return not (seconds and self._closing.wait(seconds))


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up mid-answer (timeouts, disconnect tests) are expected here


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            fake._record(Received("GET", self.path, dict(self.headers.items())))
            self._json(200, {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw) if raw else {}
            behaviour = fake._record(Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()},
                                              body))
            if not fake._sleep(behaviour.delay):
                return
            if behaviour.body is not None:
                self._raw(behaviour.status, behaviour.body, chunked=behaviour.chunked)
            elif behaviour.events is not None and body.get("stream"):
                self._stream(list(behaviour.events), behaviour.chunk_delay)
            elif behaviour.status >= 400:
                self._json(behaviour.status, error_body(behaviour), behaviour.retry_after)
            elif self.path.endswith("/responses"):
                problem = responses_problem(body)
                if problem is None and body.get("stream"):
                    self._stream(response_events(body), behaviour.chunk_delay)
                else:
                    self._json(400 if problem else 200, problem or response(body))
            elif self.path.endswith("/embeddings"):
                self._json(200, embeddings(body))
            elif body.get("stream"):
                self._stream(chat_events(body) if self.path.endswith("/chat/completions")
                             else completion_events(body), behaviour.chunk_delay)
            elif self.path.endswith("/chat/completions"):
                self._json(200, chat(body))
            elif self.path.endswith("/completions"):
                self._json(200, completion(body))
            else:
                self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error",
                                           "param": None, "code": None}})

        def _json(self, status: int, obj: Any, retry_after: str | None = None) -> None:
            self._raw(status, json.dumps(obj).encode(), retry_after=retry_after)

        def _raw(self, status: int, data: bytes, *, chunked: bool = False, retry_after: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            if not chunked:
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(data), 16384):
                piece = data[i:i + 16384]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")

        def _stream(self, events: list[bytes], chunk_delay: float) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for event in events:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
                if not fake._sleep(chunk_delay):
                    return
            self.wfile.write(b"0\r\n\r\n")

    return Handler


# --- answers --------------------------------------------------------------------------------------


def error_body(behaviour: Behaviour) -> dict[str, Any]:
    status = behaviour.status
    message = behaviour.message or (f"Incorrect API key provided: {LEAKED_KEY}. You can find your API key "
                                    "at https://platform.openai.com/account/api-keys.")
    return {"error": {"message": message, "type": _ERROR_TYPES.get(status, "server_error"), "param": None,
                      "code": _ERROR_CODES.get(status, f"fake_{status}")}}


def _response_model(body: dict[str, Any]) -> str:
    return str(body.get("model")) + RESPONSE_MODEL_SUFFIX


def chat(body: dict[str, Any]) -> dict[str, Any]:
    return {"id": "chatcmpl-fake1", "object": "chat.completion", "created": 1_700_000_000,
            "model": _response_model(body), "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer_text(body)},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": USAGE}


def completion(body: dict[str, Any]) -> dict[str, Any]:
    return {"id": "cmpl-fake1", "object": "text_completion", "created": 1_700_000_000,
            "model": _response_model(body),
            "choices": [{"index": 0, "text": answer_text(body), "finish_reason": "length", "logprobs": None}],
            "usage": USAGE}


RESPONSE_ID = "resp_fake0123456789abcdef"
RESPONSE_USAGE = {"input_tokens": 13, "input_tokens_details": {"cached_tokens": 4}, "output_tokens": 9,
                  "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 22}


def responses_problem(body: dict[str, Any]) -> dict[str, Any] | None:
    """OpenAI's 400 for what /v1/responses refuses: a chat body, no input, metadata values not strings."""
    metadata = body.get("metadata") or {}
    for bad, wrong in (("messages", "messages" in body), ("input", "input" not in body),
                       ("metadata", any(not isinstance(v, str) for v in metadata.values()))):
        if wrong:
            return {"error": {"message": f"Invalid or unsupported parameter: '{bad}'.",
                              "type": "invalid_request_error", "param": bad, "code": "invalid_value"}}
    return None


def response(body: dict[str, Any]) -> dict[str, Any]:
    """A completed Response (platform.openai.com/docs/api-reference/responses/object) echoing the input."""
    given = body["input"] if isinstance(body["input"], str) else body["input"][-1].get("content")
    text = {"type": "output_text", "text": f"fake responds: {given}", "annotations": []}
    return {"id": RESPONSE_ID, "object": "response", "created_at": 1_700_000_000, "status": "completed",
            "model": _response_model(body), "error": None, "incomplete_details": None,
            "instructions": body.get("instructions"), "metadata": body.get("metadata") or {},
            "output": [{"id": "msg_fake1", "type": "message", "status": "completed", "role": "assistant",
                        "content": [text]}],
            "parallel_tool_calls": True, "temperature": body.get("temperature", 1.0),
            "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools", []), "top_p": 1.0,
            "store": body.get("store", True), "usage": RESPONSE_USAGE}


def response_events(body: dict[str, Any]) -> list[bytes]:
    """``response``, streamed as OpenAI streams it (platform.openai.com/docs/api-reference/responses-streaming),
    its text in two deltas."""
    final = response(body)
    start = {**final, "status": "in_progress", "output": [], "usage": None}
    item = final["output"][0]
    text = item["content"][0]["text"]
    where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
    empty = {"type": "output_text", "text": "", "annotations": []}
    events = [("response.created", {"response": start}), ("response.in_progress", {"response": start}),
              ("response.output_item.added", {"output_index": 0, "item": {**item, "content": [],
                                                                        "status": "in_progress"}}),
              ("response.content_part.added", {**where, "part": empty})]
    events += [("response.output_text.delta", {**where, "delta": piece, "logprobs": []})
               for piece in (text[:5], text[5:])]
    events += [("response.output_text.done", {**where, "text": text, "logprobs": []}),
               ("response.content_part.done", {**where, "part": item["content"][0]}),
               ("response.output_item.done", {"output_index": 0, "item": item}),
               ("response.completed", {"response": final})]
    return [response_event(kind, fields, i) for i, (kind, fields) in enumerate(events)]


def response_event(kind: str, fields: dict[str, Any], sequence: int) -> bytes:
    data = json.dumps({"type": kind, "sequence_number": sequence, **fields})
    return f"event: {kind}\ndata: {data}\n\n".encode()


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    inputs = body.get("input")
    texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
    data = [{"object": "embedding", "index": i, "embedding": [round(0.1 * (i + d), 3) for d in range(EMBEDDING_DIMS)]}
            for i in range(len(texts))]
    return {"object": "list", "data": data, "model": body.get("model"),
            "usage": {"prompt_tokens": 5, "total_tokens": 5}}


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def chat_events(body: dict[str, Any]) -> list[bytes]:
    base = {"id": "chatcmpl-fakestream", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": _response_model(body)}
    words = answer_text(body).split(" ")
    events = [_sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                         "finish_reason": None}]})]
    events += [_sse({**base, "choices": [{"index": 0, "delta": {"content": w if i == 0 else " " + w},
                                          "finish_reason": None}]}) for i, w in enumerate(words)]
    events.append(_sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    return _with_usage(events, base, body)


def completion_events(body: dict[str, Any]) -> list[bytes]:
    base = {"id": "cmpl-fakestream", "object": "text_completion", "created": 1_700_000_000,
            "model": _response_model(body)}
    events = [_sse({**base, "choices": [{"index": 0, "text": w, "finish_reason": None}]})
              for w in answer_text(body).split(" ")]
    events.append(_sse({**base, "choices": [{"index": 0, "text": "", "finish_reason": "length"}]}))
    return _with_usage(events, base, body)


def _with_usage(events: list[bytes], base: dict[str, Any], body: dict[str, Any]) -> list[bytes]:
    options = body.get("stream_options") or {}
    if options.get("include_usage"):
        events.append(_sse({**base, "choices": [], "usage": USAGE}))
    return [*events, b"data: [DONE]\n\n"]
