"""A loopback fake of Anthropic's Messages API (``POST /v1/messages``), plain and streamed.

It checks what the real API checks before it answers, and says so as the real API does
(``{"type": "error", "error": {"type", "message"}, "request_id"}`` with the status Anthropic uses):

- the key: ``x-api-key``, or ``Authorization: Bearer`` as SDK 2.x sends it (x-api-key wins when both);
- ``anthropic-version`` (2023-06-01 or 2026-10-21; under 2026-10-21 ``temperature``, ``top_p`` and
  ``top_k`` are refused, even at their defaults);
- the body: ``model``, ``max_tokens`` and non-empty ``messages`` required, no unknown top-level key,
  roles ``user`` / ``assistant`` only (system is a top-level field), content blocks of known types,
  no empty text block, image sources base64 (jpeg/png/gif/webp) or url, tools with an
  ``input_schema``, ``tool_choice`` auto/any/tool/none, and every ``tool_use`` answered by a
  ``tool_result`` in the next turn (consecutive turns of one role are combined first, as the API does).

Answers are deterministic: ``fake claude says: <last user text>`` (cut to ``max_tokens`` words,
``stop_reason: max_tokens``, or before the first of ``stop_sequences`` it holds, ``stop_reason:
stop_sequence`` naming it), or with tools offered (and no tool result yet) a ``tool_use`` of the
first tool; with ``thinking`` enabled a ``thinking`` block with its ``signature`` comes first (earlier
turns' thinking blocks must come back with theirs); usage always counts cache reads and writes.
``script`` queues ``Reply`` faults. ``Received.raw`` is the body's bytes as they came.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY = "sk-ant-api03-FakeKey0123456789abcdefXYZ"
VERSIONS = frozenset({"2023-06-01", "2026-10-21"})
SAMPLING = ("temperature", "top_p", "top_k")
TOP_LEVEL = frozenset({"model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
                       "tools", "tool_choice", "thinking", "service_tier", "container", "output_config",
                       "cache_control", "inference_geo", "speed", "mcp_servers", *SAMPLING})
BLOCKS = frozenset({"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking",
                    "search_result", "server_tool_use", "web_search_tool_result"})
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
SIGNATURE = "EqQBCkYIBRgCKkB+fake/signature=="  # opaque to the client: it must come back as it was
USAGE = {"input_tokens": 11, "cache_creation_input_tokens": 3, "cache_read_input_tokens": 5}
STATUS_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                529: "overloaded_error"}


@dataclass(frozen=True)
class Reply:
    """One scripted answer: an error status, or a stream that fails after ``stream_error_after`` events."""

    status: int = 200
    message: str | None = None  # the error's message; ``{key}`` is replaced by the key the request sent
    headers: dict[str, str] = field(default_factory=dict)
    stream_error: str | None = None  # an error type sent as an ``error`` event in the middle of a stream
    stream_error_after: int = 3


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes = b""


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class FakeAnthropic:
    def __init__(self, *keys: str) -> None:
        self.keys = frozenset(keys or (KEY,))  # the keys it takes
        self.requests: list[Received] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-anthropic", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, received: Received) -> Reply:
        with self._lock:
            self.requests.append(received)
            return self._script.popleft() if self._script else Reply()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-answer is expected in tests


def _handler(fake: FakeAnthropic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            reply = fake._next(Received(self.path, headers, body if isinstance(body, dict) else {}, raw))
            try:
                sent_key = check_request(fake.keys, self.path, headers, body)
            except Refused as refused:
                return self._error(refused.status, refused.message, {})
            if reply.status >= 400:
                message = (reply.message or "Error").replace("{key}", sent_key)
                return self._error(reply.status, message, reply.headers)
            if body.get("stream"):
                return self._stream(stream_events(body, reply))
            self._json(200, message_for(body), {})

        def _error(self, status: int, message: str, extra: dict[str, str]) -> None:
            error = {"type": STATUS_TYPES.get(status, "api_error"), "message": message}
            self._json(status, {"type": "error", "error": error, "request_id": "req_fake01"}, extra)

        def _json(self, status: int, obj: Any, extra: dict[str, str]) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("request-id", "req_fake01")
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, events: list[bytes]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for event in events:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

    return Handler


# --- what the real API checks ---------------------------------------------------------------------


def check_request(keys: frozenset[str], path: str, headers: dict[str, str], body: Any) -> str:
    """The key the request sent, or ``Refused`` as the real API refuses it."""
    if path != "/v1/messages":
        raise Refused(404, f"Not found: {path}")
    sent = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
    if not sent:
        raise Refused(401, "x-api-key header is required")
    if sent not in keys:
        raise Refused(401, "invalid x-api-key")
    version = headers.get("anthropic-version")
    if version not in VERSIONS:
        raise Refused(400, f"anthropic-version: {version!r} is not a valid version")
    if not isinstance(body, dict):
        raise Refused(400, "The request body is not valid JSON.")
    check_body(body, version)
    return sent


def check_body(body: dict[str, Any], version: str) -> None:
    known = TOP_LEVEL - set(SAMPLING) if version == "2026-10-21" else TOP_LEVEL
    for name in body:
        if name not in known:
            raise Refused(400, f"{name}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise Refused(400, "model: Field required")
    if type(body.get("max_tokens")) is not int or body["max_tokens"] < 0:
        raise Refused(400, "max_tokens: Field required")
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        for i, block in enumerate(_list(system, "system")):
            _check_block(block, f"system.{i}", allowed={"text"})
    _check_messages(body.get("messages"))
    _check_tools(body.get("tools"), body.get("tool_choice"))
    stops = body.get("stop_sequences")
    if stops is not None and not all(isinstance(s, str) for s in _list(stops, "stop_sequences")):
        raise Refused(400, "stop_sequences: Input should be a valid list of strings")
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or set(metadata) - {"user_id"}):
        raise Refused(400, "metadata: only user_id is permitted")
    thinking = body.get("thinking") or {"type": "disabled"}
    if thinking.get("type") not in ("enabled", "adaptive", "disabled"):
        raise Refused(400, "thinking.type: Input should be 'enabled', 'adaptive' or 'disabled'")
    if thinking["type"] == "enabled" and not 1024 <= thinking.get("budget_tokens", 0) < body["max_tokens"]:
        raise Refused(400, "thinking.enabled.budget_tokens: Input should be >= 1024 and less than max_tokens")


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise Refused(400, f"{where}: Input should be a valid list")
    return value


def _check_messages(messages: Any) -> None:
    if not _list(messages, "messages"):
        raise Refused(400, "messages: at least one message is required")
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise Refused(400, f"messages.{i}.role: Unexpected role {role!r}. The Messages API accepts a "
                               "top-level `system` parameter, not \"system\" as an input message role.")
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) \
            else _list(content, f"messages.{i}.content")
        for j, block in enumerate(blocks):
            _check_block(block, f"messages.{i}.content.{j}", allowed=BLOCKS)
        if turns and turns[-1][0] == role:  # the API combines consecutive turns of one role
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, list(blocks)))
    _check_tool_results(turns)


def _check_block(block: Any, where: str, allowed: frozenset[str] | set[str]) -> None:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind not in allowed:
        raise Refused(400, f"{where}.type: Input tag {kind!r} found using 'type' does not match any of the "
                           "expected tags")
    if kind == "text" and (not isinstance(block.get("text"), str) or not block["text"]):
        raise Refused(400, f"{where}: text content blocks must be non-empty")
    if kind == "image":
        _check_image(block.get("source"), f"{where}.source")
    if kind == "tool_use" and not (isinstance(block.get("id"), str) and isinstance(block.get("name"), str)
                                   and isinstance(block.get("input"), dict)):
        raise Refused(400, f"{where}: tool_use blocks need id, name and an input object")
    if kind == "tool_result" and not isinstance(block.get("tool_use_id"), str):
        raise Refused(400, f"{where}.tool_use_id: Field required")
    if kind == "thinking" and not (isinstance(block.get("thinking"), str) and isinstance(block.get("signature"), str)):
        raise Refused(400, f"{where}.signature: Field required")


def _check_image(source: Any, where: str) -> None:
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and source.get("media_type") in IMAGE_TYPES and isinstance(source.get("data"), str):
        return
    if kind == "url" and str(source.get("url", "")).startswith(("http://", "https://")):
        return
    raise Refused(400, f"{where}: expected a base64 source of image/jpeg, png, gif or webp, or a url source")


def _check_tool_results(turns: list[tuple[str, list[dict[str, Any]]]]) -> None:
    """Each tool_use is answered in the next (user) turn, and each tool_result answers one just made."""
    for i, (role, blocks) in enumerate(turns):
        if role != "assistant":
            continue
        uses = {b["id"] for b in blocks if b["type"] == "tool_use"}
        following = turns[i + 1][1] if i + 1 < len(turns) else None
        if uses and following is None:
            raise Refused(400, "messages: tool_use ids were found without tool_result blocks immediately after")
        results = {b["tool_use_id"] for b in following or () if b["type"] == "tool_result"}
        if uses - results:
            raise Refused(400, f"messages: tool_use ids were found without tool_result blocks immediately after: "
                               f"{sorted(uses - results)}")
        if results - uses:
            raise Refused(400, f"messages: unexpected tool_use_id found in tool_result blocks: "
                               f"{sorted(results - uses)}")
    if turns[0][0] == "user" and any(b["type"] == "tool_result" for b in turns[0][1]):
        raise Refused(400, "messages.0: unexpected tool_use_id found in tool_result blocks")


def _check_tools(tools: Any, choice: Any) -> None:
    names = []
    for i, tool in enumerate(_list(tools, "tools") if tools is not None else ()):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise Refused(400, f"tools.{i}.name: Field required")
        schema = tool.get("input_schema")
        if tool.get("type") in (None, "custom") and not (isinstance(schema, dict) and schema.get("type") == "object"):
            raise Refused(400, f"tools.{i}.input_schema: Input should be an object schema")
        names.append(tool["name"])
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in ("auto", "any", "tool", "none"):
        raise Refused(400, "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    if kind == "tool" and choice.get("name") not in names:
        raise Refused(400, f"tool_choice.name: no tool named {choice.get('name')!r}")


# --- answers --------------------------------------------------------------------------------------


def _last_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    readable = [b for b in content if b["type"] in ("text", "tool_result")]
    return " ".join(str(b.get("text") or b.get("content") or "") for b in readable)


def _wants_tool(body: dict[str, Any]) -> bool:
    last = body["messages"][-1]["content"]
    answered = not isinstance(last, str) and any(b["type"] == "tool_result" for b in last)
    return bool(body.get("tools")) and (body.get("tool_choice") or {}).get("type") != "none" and not answered


def message_for(body: dict[str, Any]) -> dict[str, Any]:
    if _wants_tool(body):
        tool = body["tools"][0]
        content: list[dict[str, Any]] = [{"type": "tool_use", "id": "toolu_fake01", "name": tool["name"],
                                          "input": {"city": "Paris", "days": 2}}]
        stop, output, hit = "tool_use", 9, None
    else:
        text, hit = _until_stop(f"fake claude says: {_last_text(body)}", body.get("stop_sequences") or ())
        words = text.split(" ")
        kept = words[:body["max_tokens"]]
        content = [{"type": "text", "text": " ".join(kept)}]
        stop = "max_tokens" if len(kept) < len(words) else "stop_sequence" if hit else "end_turn"
        output = len(kept)
    if (body.get("thinking") or {}).get("type") in ("enabled", "adaptive"):
        content.insert(0, {"type": "thinking", "thinking": "fake thought", "signature": SIGNATURE})
    return {"id": "msg_fake01", "type": "message", "role": "assistant", "model": body["model"], "content": content,
            "stop_reason": stop, "stop_sequence": hit if stop == "stop_sequence" else None,
            "usage": {**USAGE, "output_tokens": output}}


def _until_stop(text: str, stops: Any) -> tuple[str, str | None]:
    """The text before the earliest stop sequence in it, and that sequence."""
    found = min(((text.find(s), s) for s in stops if s in text), default=None)
    return (text, None) if found is None else (text[:found[0]], found[1])


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


def stream_events(body: dict[str, Any], reply: Reply) -> list[bytes]:
    """The events of ``message_for(body)``, as Anthropic streams them."""
    message = message_for(body)
    start = {**message, "content": [], "stop_reason": None, "usage": {**USAGE, "output_tokens": 1}}
    events = [_event("message_start", {"message": start}), _event("ping", {})]
    for index, block in enumerate(message["content"]):
        events += _block_events(index, block)
    events += [_event("message_delta", {"delta": {"stop_reason": message["stop_reason"],
                                                  "stop_sequence": message["stop_sequence"]},
                                        "usage": {"output_tokens": message["usage"]["output_tokens"]}}),
               _event("message_stop", {})]
    if reply.stream_error:
        error = {"type": reply.stream_error, "message": "Overloaded"}
        events = [*events[:reply.stream_error_after], _event("error", {"error": error})]
    return events


def _block_events(index: int, block: dict[str, Any]) -> list[bytes]:
    if block["type"] == "tool_use":
        arguments = json.dumps(block["input"])
        pieces = [arguments[i:i + 7] for i in range(0, len(arguments), 7)]
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
        opening = {**block, "input": {}}
    elif block["type"] == "thinking":
        deltas = [{"type": "thinking_delta", "thinking": block["thinking"]},
                  {"type": "signature_delta", "signature": block["signature"]}]
        opening = {"type": "thinking", "thinking": "", "signature": ""}
    else:
        words = block["text"].split(" ")
        deltas = [{"type": "text_delta", "text": w if i == 0 else " " + w} for i, w in enumerate(words)]
        opening = {"type": "text", "text": ""}
    return [_event("content_block_start", {"index": index, "content_block": opening}),
            *[_event("content_block_delta", {"index": index, "delta": d}) for d in deltas],
            _event("content_block_stop", {"index": index})]
