"""A loopback fake of Google's Gemini API and of Vertex AI's Gemini endpoints, with an OAuth token
endpoint, checking what the real services require and answering in their shapes.

- Gemini API: ``POST /v1beta/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse``,
  ``:batchEmbedContents``; the key in ``x-goog-api-key`` (missing: 403, wrong: 400 API_KEY_INVALID).
- Vertex AI: ``POST /v1[beta1]/projects/{p}/locations/{l}/publishers/google/models/{model}:...``
  with ``Authorization: Bearer <a token this fake issued>`` (else 401 UNAUTHENTICATED).
- Claude on Vertex AI: ``POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{model}:rawPredict``
  (``:streamRawPredict``), the same Bearer token; the body is Anthropic's Messages body with
  ``anthropic_version`` and without ``model`` (checked and answered by ``tests.support.fake_anthropic``).
- ``POST /token``: a service account's JWT-bearer grant; the assertion's RS256 signature is
  verified with the public key of the account ``service_account`` made, its iss/aud/scope/exp checked.

Bodies are checked as the real API does: known fields only, roles ``user``/``model``, non-empty
parts of one kind each, as many function responses as the turn before made calls. Answers are
deterministic: with tools (and a mode other than NONE) and no function result yet, a signed
function call of the first tool; otherwise ``fake gemini says: <last user text>``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support import fake_anthropic
from tests.support.gemini_checks import check_embed, check_generate

SIGNATURE = base64.b64encode(b"fake-thought-signature").decode()
USAGE = {"promptTokenCount": 11, "candidatesTokenCount": 7, "thoughtsTokenCount": 3, "cachedContentTokenCount": 2,
         "totalTokenCount": 21}
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
# Claude on Vertex: what Anthropic's and Google's docs require, and what the anthropic SDK 2.10's
# AnthropicVertex sends by default (its Messages API version), which takes no temperature or top_p.
VERTEX_ANTHROPIC_VERSIONS = {"vertex-2023-10-16": "2023-06-01", "2026-10-21": "2026-10-21"}


@dataclass(frozen=True)
class Fault:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: Any


def google_error(status: int, message: str, code: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": code}}


class FakeGemini:
    def __init__(self, api_key: str = "gem-key-secret-123456", token_lifetime: int = 3600) -> None:
        self.api_key = api_key
        self.token_lifetime = token_lifetime
        self.requests: list[Received] = []
        self.token_requests = 0
        self.tokens: set[str] = set()
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True, name="fake-gemini")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def service_account(self, project: str = "proj-1") -> dict[str, Any]:
        """A service account's JSON whose key this fake knows and whose token_uri is this fake."""
        pem = self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": project, "private_key_id": "kid-0123456789abcdef",
                "private_key": pem, "client_email": f"gw@{project}.iam.gserviceaccount.com",
                "client_id": "1234567890", "token_uri": f"{self.url}/token"}

    def script(self, *faults: Fault) -> None:
        self._faults.extend(faults)

    def __enter__(self) -> FakeGemini:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- what the handler asks ----------------------------------------------------------------------

    def issue_token(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.token_requests += 1
            n = self.token_requests
        problem = self._assertion_problem(form)
        if problem:
            return 400, {"error": "invalid_grant", "error_description": problem}
        token = f"ya29.fake-token-{n}"
        self.tokens.add(token)
        return 200, {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}

    def _assertion_problem(self, form: dict[str, list[str]]) -> str | None:
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return "unsupported grant_type"
        pieces = (form.get("assertion") or [""])[0].encode().split(b".")
        if len(pieces) != 3:
            return "malformed assertion"
        head, payload, signature = pieces
        try:
            self._key.public_key().verify(_unb64(signature), head + b"." + payload, padding.PKCS1v15(),
                                          hashes.SHA256())
        except Exception:  # cryptography's InvalidSignature, or a malformed assertion
            return "Invalid JWT Signature."
        claims = json.loads(_unb64(payload))
        # google-auth names Google's token endpoint as the audience wherever it posts the grant.
        if claims.get("aud") not in (GOOGLE_TOKEN_URI, f"{self.url}/token") or CLOUD_PLATFORM not in str(
                claims.get("scope")):
            return "bad audience or scope"
        return None if claims.get("exp", 0) > time.time() else "expired assertion"

    def next_fault(self) -> Fault | None:
        return self._faults.popleft() if self._faults else None


def _unb64(part: bytes) -> bytes:
    return base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4))


def _handler(fake: FakeGemini) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            url = urlsplit(self.path)
            if url.path == "/token":
                self._json(*fake.issue_token(parse_qs(raw.decode())))
                return
            body = json.loads(raw or b"{}")
            fake.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            refused = self._auth(url.path)
            if refused:
                self._json(*refused)
                return
            fault = fake.next_fault()
            if fault:
                self._json(fault.status, fault.body or google_error(fault.status, "scripted", "INTERNAL"),
                           fault.headers)
                return
            self._answer(url.path, body)

        def _auth(self, path: str) -> tuple[int, dict[str, Any]] | None:
            if "/projects/" in path:
                token = (self.headers.get("authorization") or "").removeprefix("Bearer ")
                return None if token in fake.tokens else (401, google_error(
                    401, "Request had invalid authentication credentials.", "UNAUTHENTICATED"))
            key = self.headers.get("x-goog-api-key")
            if key is None:
                return 403, google_error(403, "Method doesn't allow unregistered callers.", "PERMISSION_DENIED")
            return None if key == fake.api_key else (400, google_error(
                400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT"))

        def _answer(self, path: str, body: Any) -> None:
            model, _, method = path.rpartition("/models/")[2].partition(":")
            if "/publishers/anthropic/" in path:
                self._claude(model, method, body)
                return
            checker = check_embed if method == "batchEmbedContents" else check_generate
            problem = checker(body)
            if problem:
                self._json(400, google_error(400, problem, "INVALID_ARGUMENT"))
            elif method == "batchEmbedContents":
                self._json(200, embeddings(body))
            elif method == "generateContent":
                self._json(200, generate(body, model))
            elif method == "streamGenerateContent":
                self._stream(stream_events(body, model))
            else:
                self._json(404, google_error(404, f"method {method} not found", "NOT_FOUND"))

        def _claude(self, model: str, method: str, body: Any) -> None:
            try:
                message_body = claude_body(model, method, body)
            except fake_anthropic.Refused as refused:
                kind = fake_anthropic.STATUS_TYPES.get(refused.status, "api_error")
                self._json(refused.status, {"type": "error", "error": {"type": kind, "message": refused.message}})
                return
            if method == "rawPredict":
                self._json(200, fake_anthropic.message_for(message_body))
            else:
                self._chunked(fake_anthropic.stream_events(message_body, fake_anthropic.Reply()))

        def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            for name, value in {"content-type": "application/json", **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, events: list[dict[str, Any]]) -> None:
            # Google ends its events with CRLF CRLF
            self._chunked([b"data: " + json.dumps(event).encode() + b"\r\n\r\n" for event in events])

        def _chunked(self, events: list[bytes]) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for data in events:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

    return Handler


def claude_body(model: str, method: str, body: Any) -> dict[str, Any]:
    """The Messages body a Vertex rawPredict call stands for (``model`` from the URL), or ``Refused``."""
    if method not in ("rawPredict", "streamRawPredict"):
        raise fake_anthropic.Refused(404, f"method {method} not found")
    if not isinstance(body, dict):
        raise fake_anthropic.Refused(400, "The request body is not valid JSON.")
    sent = dict(body)
    version = VERTEX_ANTHROPIC_VERSIONS.get(sent.pop("anthropic_version", None))
    if version is None:
        raise fake_anthropic.Refused(400, f"anthropic_version: {body.get('anthropic_version')!r} is not valid; "
                                          "vertex-2023-10-16 is")
    if "model" in sent:  # Anthropic's docs: on Vertex the model is named in the URL, not in the body
        raise fake_anthropic.Refused(400, "model: Extra inputs are not permitted")
    # The fake's own guard (the docs are silent): a stream flag the method does not match would be
    # answered in the framing the caller does not read.
    if bool(sent.get("stream")) != (method == "streamRawPredict"):
        raise fake_anthropic.Refused(400, f"stream: {method} takes stream={method == 'streamRawPredict'}")
    message_body = {**sent, "model": model}
    fake_anthropic.check_body(message_body, version)
    return message_body


# --- answers -----------------------------------------------------------------------------------------


def _last_text(body: dict[str, Any]) -> str:
    for content in reversed(body["contents"]):
        for part in content["parts"]:
            if "functionResponse" in part:
                return "tool said " + json.dumps(part["functionResponse"]["response"], sort_keys=True)
            if content["role"] == "user" and "text" in part:
                return part["text"]
    return ""


def _wants_call(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = body.get("tools") or []
    mode = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode", "AUTO")
    last = body["contents"][-1]["parts"]
    if not tools or mode == "NONE" or any("functionResponse" in p for p in last):
        return None
    allowed = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("allowedFunctionNames")
    name = allowed[0] if allowed else tools[0]["functionDeclarations"][0]["name"]
    return {"functionCall": {"name": name, "args": {"echo": _last_text(body)}}, "thoughtSignature": SIGNATURE}


def _candidate(body: dict[str, Any], index: int) -> dict[str, Any]:
    call = _wants_call(body)
    part = call or {"text": f"fake gemini says: {_last_text(body)}"}
    return {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": index}


def generate(body: dict[str, Any], model: str) -> dict[str, Any]:
    count = (body.get("generationConfig") or {}).get("candidateCount", 1)
    return {"candidates": [_candidate(body, i) for i in range(count)], "usageMetadata": USAGE,
            "modelVersion": f"{model}-001", "responseId": f"resp-{len(json.dumps(body))}"}


def stream_events(body: dict[str, Any], model: str) -> list[dict[str, Any]]:
    whole = generate(body, model)
    part = whole["candidates"][0]["content"]["parts"][0]
    pieces = [{"text": w} for w in _words(part["text"])] if "text" in part else [part]
    events = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [piece]}, "index": 0}
        if last:
            candidate["finishReason"] = "STOP"
        usage = USAGE if last else {"promptTokenCount": USAGE["promptTokenCount"], "totalTokenCount": 11}
        events.append({"candidates": [candidate], "usageMetadata": usage, "modelVersion": whole["modelVersion"],
                       "responseId": whole["responseId"]})
    return events


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + words[-1:]


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    out = []
    for request in body["requests"]:
        text = request["content"]["parts"][0]["text"]
        size = request.get("outputDimensionality", 8)
        out.append({"values": [float(len(text))] + [0.5] * (size - 1)})
    tokens = sum(len(r["content"]["parts"][0]["text"].split()) for r in body["requests"])
    return {"embeddings": out, "usageMetadata": {"promptTokenCount": tokens, "totalTokenCount": tokens}}
