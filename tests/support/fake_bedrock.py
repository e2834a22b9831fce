"""A loopback stand-in for Bedrock's runtime API: Converse and ConverseStream, checked as AWS checks them.

What it insists on, as the service does: a SigV4 signature (service ``bedrock``, the configured
region) that botocore's own signer recomputes from the received request with the known secret
(``x-amz-security-token`` for temporary keys, moto's STS ones included through ``lookup``); the
model id as one percent-encoded path label (``:`` -> ``%3A``, ``/`` -> ``%2F``, as botocore renders
it); Converse's body rules (known fields only, turns that start with the user and alternate, no
blank text, one member per content block, tool blocks only with a ``toolConfig``, tool results
answering the previous turn's tool uses, base64 image bytes). Answers are in the real shapes: JSON
for Converse, the binary event stream (prelude, headers, payload, CRC-32s; encoded here) for
ConverseStream, errors as ``{"message"}`` with the ``x-amzn-ErrorType`` header.

    with FakeBedrock(credentials={KEY_ID: SECRET}) as fake:  # endpoint_url=fake.url
        fake.script(Reply(text="hi"))  # the next answer (else an echo); fake.requests: what arrived
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import struct
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode

SERVICE = "bedrock"
MAX_SKEW = datetime.timedelta(minutes=5)
TOP_LEVEL = frozenset({"messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig",
                       "additionalModelRequestFields", "promptVariables", "additionalModelResponseFieldPaths",
                       "requestMetadata", "performanceConfig", "serviceTier", "outputConfig"})
BLOCK_KEYS = frozenset({"text", "image", "document", "video", "audio", "toolUse", "toolResult", "guardContent",
                        "cachePoint", "reasoningContent"})
INFERENCE_KEYS = frozenset({"maxTokens", "temperature", "topP", "stopSequences"})
Lookup = Callable[[str], "tuple[str, str | None] | None"]  # access key id -> (secret, session token)


@dataclass
class Reply:
    """The next answer: text and/or tool uses, or an error (HTTP, or an exception event mid-stream)."""

    text: str | None = None
    tool_uses: list[dict[str, Any]] = field(default_factory=list)  # {"toolUseId", "name", "input"}
    stop_reason: str | None = None  # default: tool_use with tool uses, else end_turn
    usage: dict[str, int] = field(default_factory=lambda: {"inputTokens": 11, "outputTokens": 7,
                                                           "cacheReadInputTokens": 3,
                                                           "cacheWriteInputTokens": 2})
    status: int = 200
    error_type: str | None = None  # with status >= 400: ThrottlingException, ValidationException...
    message: str = ""
    stream_exception: str | None = None  # "throttlingException": sent after the first text delta
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    path: str  # raw, as received
    model_id: str  # decoded
    stream: bool
    headers: dict[str, str]
    body: dict[str, Any]


class Refused(Exception):  # what the service answers instead
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


class FakeBedrock:
    def __init__(self, credentials: dict[str, str | tuple[str, str]] | None = None, region: str = "us-east-1",
                 lookup: Lookup | None = None, api_keys: frozenset[str] = frozenset()) -> None:
        self.region = region
        self._api_keys = api_keys  # Bedrock API keys, sent as ``Authorization: Bearer`` instead of SigV4
        self._credentials = dict(credentials or {})
        self._lookup = lookup
        self._replies: list[Reply] = []
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake._serve(self, raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeBedrock:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    # --- serving --------------------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        try:
            model_id, stream = self._route(handler.path)
            self._verify_signature(handler.path, headers, raw)
            body = _converse_body(raw)
        except Refused as refused:
            return _send_error(handler, refused.status, refused.error_type, refused.message)
        with self._lock:
            self.requests.append(Seen(handler.path, model_id, stream, headers, body))
            reply = self._replies.pop(0) if self._replies else Reply(text=f"You said: {_last_user_text(body)}")
        if reply.status >= 400:
            return _send_error(handler, reply.status, reply.error_type or "ValidationException", reply.message,
                               reply.headers)
        if stream:
            return _send_stream(handler, reply)
        return _send_json(handler, 200, _answer(reply))

    def _route(self, path: str) -> tuple[str, bool]:
        parts = path.split("/")
        if len(parts) != 4 or parts[1] != "model" or parts[3] not in ("converse", "converse-stream"):
            raise Refused(404, "UnknownOperationException", f"no operation at {path}")
        label = parts[2]
        model_id = unquote(label)
        if percent_encode(model_id) != label:  # the label as botocore renders it, ":" and "/" encoded
            raise Refused(400, "ValidationException", f"the model id in the path is not encoded as expected: {label}")
        return model_id, parts[3] == "converse-stream"

    def _verify_signature(self, path: str, headers: dict[str, str], body: bytes) -> None:
        auth = headers.get("authorization", "")
        if auth.startswith("Bearer "):
            if auth.removeprefix("Bearer ") not in self._api_keys:
                raise Refused(403, "UnrecognizedClientException", "Invalid API Key format: Must start with "
                              "pre-defined prefix")
            return
        fields = dict(item.strip().split("=", 1) for item in auth.removeprefix("AWS4-HMAC-SHA256 ").split(","))
        if not auth.startswith("AWS4-HMAC-SHA256 ") or not {"Credential", "SignedHeaders", "Signature"} <= set(fields):
            raise Refused(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        key_id, date, region, service, terminal = fields["Credential"].split("/")
        secret, token = self._secret(key_id)
        if (region, service, terminal) != (self.region, SERVICE, "aws4_request"):
            raise Refused(403, "InvalidSignatureException", f"Credential should be scoped to {self.region}/{SERVICE}")
        stamp = headers.get("x-amz-date", "")
        when = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
        if abs(datetime.datetime.now(datetime.UTC) - when) > MAX_SKEW or not stamp.startswith(date):
            raise Refused(403, "InvalidSignatureException", "Signature expired")
        signed = fields["SignedHeaders"].split(";")
        if not {"host", "x-amz-date"} <= set(signed) or (token and "x-amz-security-token" not in signed):
            raise Refused(403, "InvalidSignatureException", "host, x-amz-date (and the token) must be signed")
        if token is not None and headers.get("x-amz-security-token") != token:
            raise Refused(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        if _signature(path, headers, signed, body, Credentials(key_id, secret, token), self.region, stamp) != \
                fields["Signature"]:
            raise Refused(403, "InvalidSignatureException", "The request signature we calculated does not match the "
                          "signature you provided. Check your AWS Secret Access Key and signing method.")

    def _secret(self, key_id: str) -> tuple[str, str | None]:
        known = self._credentials.get(key_id)
        if isinstance(known, tuple):
            return known
        if isinstance(known, str):
            return known, None
        found = self._lookup(key_id) if self._lookup else None
        if found is None:
            raise Refused(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        return found


def _signature(path: str, headers: dict[str, str], signed: list[str], body: bytes, credentials: Credentials,
               region: str, stamp: str) -> str:
    """botocore's signer over the request as received: only the signed headers, the raw path."""
    request = AWSRequest(method="POST", url=f"http://{headers['host']}{path}", data=body,
                         headers={name: headers[name] for name in signed if name in headers})
    request.context["timestamp"] = stamp
    signer = SigV4Auth(credentials, SERVICE, region)
    return signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)


# --- Converse's request rules -----------------------------------------------------------------------

def _converse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise Refused(400, "SerializationException", "the body is not JSON") from None
    unknown = set(body) - TOP_LEVEL
    if unknown:
        raise Refused(400, "ValidationException", f"Unknown parameters: {sorted(unknown)}")
    _check_messages(body.get("messages"), body.get("toolConfig"))
    for i, block in enumerate(body.get("system") or []):
        if set(block) - {"text", "guardContent", "cachePoint"} or ("text" in block and not block["text"].strip()):
            raise Refused(400, "ValidationException", f"system.{i}: a non-blank text block is expected")
    _check_inference(body.get("inferenceConfig") or {})
    _check_tool_config(body.get("toolConfig"))
    return body


def _check_messages(messages: Any, tool_config: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise Refused(400, "ValidationException", "messages: at least one message is required")
    previous_uses: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant") or not message.get("content"):
            raise Refused(400, "ValidationException", f"messages.{i}: role user or assistant and content required")
        if (i == 0 and role != "user") or (i and role == messages[i - 1]["role"]):
            raise Refused(400, "ValidationException", "A conversation must start with a user message and "
                          "alternate between user and assistant roles.")
        uses = {b["toolUse"]["toolUseId"] for b in message["content"] if "toolUse" in b}
        for j, block in enumerate(message["content"]):
            _check_block(block, f"messages.{i}.content.{j}", role, previous_uses, tool_config)
        previous_uses = uses


def _check_block(block: dict[str, Any], where: str, role: str, previous_uses: set[str], tool_config: Any) -> None:
    if len(block) != 1 or not set(block) <= BLOCK_KEYS:
        raise Refused(400, "ValidationException", f"{where}: exactly one member of ContentBlock is expected")
    (kind, value), = block.items()
    if kind == "text" and not value.strip():
        raise Refused(400, "ValidationException", f"The text field in the ContentBlock object at {where} is blank.")
    if kind in ("toolUse", "toolResult") and not tool_config:
        raise Refused(400, "ValidationException", "The toolConfig field must be defined when using toolUse and "
                      "toolResult content blocks.")
    if kind == "toolUse" and (role != "assistant" or not isinstance(value.get("input"), dict) or not value["name"]):
        raise Refused(400, "ValidationException", f"{where}: toolUse needs an assistant turn, a name, an input object")
    if kind == "toolResult" and (role != "user" or value.get("toolUseId") not in previous_uses):
        raise Refused(400, "ValidationException", f"{where}: toolResult must answer a toolUse of the previous turn")
    if kind == "image":
        _check_image(value, where)


def _check_image(image: dict[str, Any], where: str) -> None:
    if image.get("format") not in ("png", "jpeg", "gif", "webp"):
        raise Refused(400, "ValidationException", f"{where}.image.format: png, jpeg, gif or webp")
    try:
        base64.b64decode(image["source"]["bytes"], validate=True)
    except (KeyError, TypeError, binascii.Error):
        raise Refused(400, "ValidationException", f"{where}.image.source.bytes: base64 bytes expected") from None


def _check_inference(config: dict[str, Any]) -> None:
    if set(config) - INFERENCE_KEYS:
        raise Refused(400, "ValidationException", f"inferenceConfig: unknown {sorted(set(config) - INFERENCE_KEYS)}")
    if "maxTokens" in config and (type(config["maxTokens"]) is not int or config["maxTokens"] < 1):
        raise Refused(400, "ValidationException", "inferenceConfig.maxTokens: an integer >= 1")
    for key in ("temperature", "topP"):
        if key in config and not 0 <= config[key] <= 1:
            raise Refused(400, "ValidationException", f"inferenceConfig.{key}: between 0 and 1")


def _check_tool_config(config: Any) -> None:
    if config is None:
        return
    tools = config.get("tools")
    if not tools or any("toolSpec" not in t or "json" not in t["toolSpec"].get("inputSchema", {}) for t in tools):
        raise Refused(400, "ValidationException", "toolConfig.tools: toolSpec with inputSchema.json expected")
    names = {t["toolSpec"]["name"] for t in tools}
    choice = config.get("toolChoice")
    if choice is not None and (len(choice) != 1 or not set(choice) <= {"auto", "any", "tool"}
                               or ("tool" in choice and choice["tool"].get("name") not in names)):
        raise Refused(400, "ValidationException", "toolConfig.toolChoice: auto, any or a tool that is defined")


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body["messages"]):
        texts = [b["text"] for b in message["content"] if "text" in b]
        if message["role"] == "user" and texts:
            return texts[-1]
    return ""


# --- answers --------------------------------------------------------------------------------------

def _stop_reason(reply: Reply) -> str:
    return reply.stop_reason or ("tool_use" if reply.tool_uses else "end_turn")


def _usage(reply: Reply) -> dict[str, int]:
    return {**reply.usage, "totalTokens": sum(reply.usage.values())}


def _answer(reply: Reply) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"text": reply.text}] if reply.text is not None else []
    content += [{"toolUse": use} for use in reply.tool_uses]
    return {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": _stop_reason(reply),
            "usage": _usage(reply), "metrics": {"latencyMs": 42}}


def _events(reply: Reply) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "event:messageStart", {"role": "assistant"}
    index = 0
    if reply.text is not None:
        for k, word in enumerate(reply.text.split(" ")):
            yield "event:contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": (" " if k else "") + word}}
            if reply.stream_exception:
                yield f"exception:{reply.stream_exception}", {"message": reply.message or "Too many tokens"}
                return
        yield "event:contentBlockStop", {"contentBlockIndex": 0}
        index = 1
    for use in reply.tool_uses:
        yield "event:contentBlockStart", {"contentBlockIndex": index, "start": {
            "toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}}
        arguments = json.dumps(use["input"])
        for piece in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2:]):
            yield "event:contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}}
        yield "event:contentBlockStop", {"contentBlockIndex": index}
        index += 1
    yield "event:messageStop", {"stopReason": _stop_reason(reply)}
    yield "event:metadata", {"usage": _usage(reply), "metrics": {"latencyMs": 42}}


def event_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude (total and headers length, CRC), headers (string
    values, type 7), payload, and the CRC-32 of everything before it."""
    encoded = b"".join(struct.pack("!B", len(name)) + name.encode() + struct.pack("!BH", 7, len(value.encode()))
                       + value.encode() for name, value in headers.items())
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", binascii.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack("!I", binascii.crc32(message))


def _frame(kind: str, event: dict[str, Any]) -> bytes:
    message_type, _, name = kind.partition(":")
    name_header = ":event-type" if message_type == "event" else ":exception-type"
    # Bedrock pads each event with a "p" field so its length does not tell the text's; readers ignore it.
    payload = json.dumps({**event, "p": "abcdefghij"[: len(name) % 10]}).encode()
    return event_frame({name_header: name, ":content-type": "application/json", ":message-type": message_type},
                       payload)


def _send_stream(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/vnd.amazon.eventstream")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.send_header("x-amzn-RequestId", str(uuid.uuid4()))
    handler.end_headers()
    for kind, event in _events(reply):
        frame = _frame(kind, event)
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
    handler.wfile.write(b"0\r\n\r\n")


def _send_json(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any],
               headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    for name, value in {"Content-Type": "application/json", "x-amzn-RequestId": str(uuid.uuid4()),
                        **(headers or {})}.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _send_error(handler: BaseHTTPRequestHandler, status: int, error_type: str, message: str,
                headers: dict[str, str] | None = None) -> None:
    # As the service sends it: the name (and a namespace botocore drops) in the header, the text in the body.
    _send_json(handler, status, {"message": message},
               {"x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/",
                **(headers or {})})


def moto_sts_lookup(key_id: str) -> tuple[str, str | None] | None:
    """Temporary keys moto's STS issued (its server runs in this process): what AWS itself would know."""
    from moto.sts.models import sts_backends

    for account in list(sts_backends.values()):
        for backend in list(account.values()):
            for role in backend.assumed_roles:
                if role.access_key_id == key_id:
                    return role.secret_access_key, role.session_token
    return None
