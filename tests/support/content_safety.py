"""A loopback stand-in of Azure AI Content Safety's ``text:analyze`` (api-version 2023-10-01).

Checks what the real service checks: the ``Ocp-Apim-Subscription-Key`` header (401 with the
service's error shape otherwise), the api-version, and the body (``text`` present and at most
10,000 characters, known ``categories`` and ``outputType``). Severities are scripted per text marker:

    with ContentSafetyStandIn(key="k") as cs:
        cs.score("HATEFUL", Hate=6)        # any text containing HATEFUL gets Hate 6
        cs.script(Fault(status=429))       # the next request answers 429, then back to normal
        cs.slow("LATE", 1.0)               # any text containing LATE is answered a second late

With ``FourSeverityLevels`` a scripted severity is rounded down to 0, 2, 4 or 6, as the service
reports it. Every request is recorded (text, headers), and the most requests in flight at once is
kept, so tests can see that parts of a long text were checked concurrently.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PATH = "/contentsafety/text:analyze"
API_VERSION = "2023-10-01"
CATEGORIES = ("Hate", "SelfHarm", "Sexual", "Violence")
MAX_CHARS = 10_000


@dataclass(frozen=True)
class Fault:
    status: int = 200  # >= 400: answer with the service's error body
    delay: float = 0.0  # seconds before answering (longer than the gateway's timeout: a timeout)
    retry_after: int | None = None


@dataclass(frozen=True)
class Analyzed:
    text: str
    headers: dict[str, str]
    body: dict[str, Any]


class ContentSafetyStandIn:
    def __init__(self, key: str = "cs-test-key", *, delay: float = 0.0) -> None:
        self.key = key
        self.delay = delay  # every answer, in seconds (the bench's 50 ms service)
        self.requests: list[Analyzed] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._scores: dict[str, dict[str, int]] = {}
        self._slow: dict[str, float] = {}
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="content-safety", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def score(self, marker: str, **severities: int) -> None:
        unknown = set(severities) - set(CATEGORIES)
        assert not unknown, f"not a category: {unknown}"
        self._scores[marker] = severities

    def slow(self, marker: str, seconds: float) -> None:
        """A text containing ``marker`` waits ``seconds`` before its answer (one part of a long text late)."""
        self._slow[marker] = seconds

    def _delay(self, text: str) -> float:
        return max((s for marker, s in self._slow.items() if marker in text), default=self.delay)

    def script(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.requests]

    def __enter__(self) -> ContentSafetyStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    # --- called by the handler threads --------------------------------------------------------

    def _begin(self, request: Analyzed) -> Fault:
        with self._lock:
            self.requests.append(request)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            return self._faults.popleft() if self._faults else Fault()

    def _end(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _sleep(self, seconds: float) -> bool:
        return not (seconds and self._closing.wait(seconds))

    def analysis(self, text: str, output_type: str) -> dict[str, Any]:
        found = dict.fromkeys(CATEGORIES, 0)
        for marker, severities in self._scores.items():
            if marker in text:
                for category, severity in severities.items():
                    found[category] = max(found[category], severity)
        if output_type == "FourSeverityLevels":
            found = {c: s - s % 2 for c, s in found.items()}
        return {"blocklistsMatch": [],
                "categoriesAnalysis": [{"category": c, "severity": s} for c, s in found.items()]}


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the gateway hanging up on a slow answer (its timeout) is expected


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _handler(cs: ContentSafetyStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            url = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = {}
            fault = cs._begin(Analyzed(body.get("text", "") if isinstance(body, dict) else "", headers, body))
            try:
                self._answer(url, headers, body, fault)
            finally:
                cs._end()

        def _answer(self, url: Any, headers: dict[str, str], body: Any, fault: Fault) -> None:
            text = body.get("text") if isinstance(body, dict) else None
            if not cs._sleep(fault.delay or cs._delay(text if isinstance(text, str) else "")):
                return
            if url.path != PATH:
                return self._json(404, _error("NotFound", "Resource not found"))
            if parse_qs(url.query).get("api-version") != [API_VERSION]:
                return self._json(404, _error("UnsupportedApiVersion", "The api-version is not supported"))
            if headers.get("ocp-apim-subscription-key") != cs.key:
                return self._json(401, _error("401", "Access denied due to invalid subscription key or wrong API "
                                                     "endpoint."))
            if fault.status >= 400:
                extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                return self._json(fault.status, _error("ServiceError", "scripted failure"), extra)
            problem = _invalid(body)
            if problem:
                return self._json(400, _error("InvalidRequestBody", problem))
            self._json(200, cs.analysis(body["text"], body.get("outputType", "FourSeverityLevels")))

        def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _invalid(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        return "text is required"
    if len(body["text"]) > MAX_CHARS:
        return f"text is longer than {MAX_CHARS} characters"
    if not set(body.get("categories") or CATEGORIES) <= set(CATEGORIES):
        return "unknown category"
    if body.get("outputType", "FourSeverityLevels") not in ("FourSeverityLevels", "EightSeverityLevels"):
        return "unknown outputType"
    return None
