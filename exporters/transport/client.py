"""The exporters' shared httpx client on the lean transport (``exporters.transport.http11``), and
the answer it hands an exporter.

``ExportClient`` is the ``Poster`` (``exporters.transport.poster``) every HTTP exporter posts
through: its ``post_answer`` writes a cached, already checked request head, a Content-Length and
the body; what that head cannot carry goes through httpx's own ``post`` (``_httpx_post``).
Proven against ``httpx.Client`` by ``tests/exporters/transport/test_client_differential.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from contracts.request_head import check_header, serialize
from exporters.transport.http11 import Exchanged, ExportTransport
from exporters.transport.poster import Poster


class ExportAnswer:
    """What ``ExportClient.post_answer`` returns: the status at once; headers, body and text through
    an ``httpx.Response`` built only when one of them is read (decoded as httpx decodes them), which
    an exporter does only for a failure. Building and reading that response and its request cost
    ~50 us a POST on a 2-core box, a tenth of a one-span export."""

    __slots__ = ("_body", "_headers", "_response", "status_code")

    def __init__(self, status_code: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status_code, self._headers, self._body = status_code, headers, body
        self._response: httpx.Response | None = None

    @classmethod
    def of(cls, response: httpx.Response) -> ExportAnswer:
        answer = cls(response.status_code, response.headers.raw, b"")
        answer._response = response
        return answer

    @property
    def response(self) -> httpx.Response:
        if self._response is None:
            response = httpx.Response(self.status_code, headers=self._headers, stream=httpx.ByteStream(self._body),
                                      extensions={"http_version": b"HTTP/1.1"})
            response.read()
            self._response = response
        return self._response

    @property
    def headers(self) -> httpx.Headers:
        return self.response.headers

    @property
    def content(self) -> bytes:
        return self.response.content

    @property
    def text(self) -> str:
        return self.response.text


class ExportClient(httpx.Client, Poster):
    """An ``httpx.Client`` on ``ExportTransport`` whose ``post`` of a bytes body skips what an export
    never uses: base-URL merging, auth, redirects, event hooks, the per-request log line, and
    cookies, which a client shared by every team must not carry from one team's answer into another
    team's request anyway. The request head for a (URL, headers) pair is built once by httpx and
    ``serialize`` (so it is checked, and byte for byte what httpx would write) and cached; a POST is
    then that head, a Content-Length and the body. The client's timeout applies as usual; its
    default headers are read when a head is first built (assigning ``client.headers`` clears the
    cache). Any other call goes through httpx unchanged. Measured (``bench/export_cost.py steps``):
    ``post`` 0.42 ms on httpx's stack, 0.26 ms with only the transport replaced, ~0.08 ms here.
    """

    _MAX_HEADS = 4096  # one per destination; bounded all the same

    def __init__(self, *, transport: ExportTransport | None = None, **kwargs: Any) -> None:
        if "mounts" in kwargs or "proxy" in kwargs or kwargs.get("trust_env", True):
            # trust_env would let httpx mount the environment's proxies, which the fast path skips.
            raise ValueError("ExportClient sends directly (trust_env=False, no proxy or mounts); "
                             "build a plain httpx.Client for proxied routes")
        self._heads: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[httpx.URL, bytes]] = {}
        super().__init__(transport=transport or ExportTransport(), cookies=None, **kwargs)
        self._direct: ExportTransport = transport or self._transport  # type: ignore[assignment]
        self._default_timeout = self.timeout.as_dict()
        self._names_ok: set[bytes] = set()

    @property  # type: ignore[override]
    def headers(self) -> httpx.Headers:
        return super().headers

    @headers.setter
    def headers(self, headers: Any) -> None:
        httpx.Client.headers.fset(self, headers)  # type: ignore[attr-defined]
        self._heads = {}

    def post(self, url: httpx.URL | str, *, content: Any = None, headers: Any = None,
             timeout: Any = httpx.USE_CLIENT_DEFAULT, **kwargs: Any) -> httpx.Response:
        if not self._fast(url, content, headers, kwargs):
            return super().post(url, content=content, headers=headers, timeout=timeout, **kwargs)
        parsed, (status, raw_headers, body) = self._exchange(url, content, headers, timeout)  # type: ignore[arg-type]
        response = httpx.Response(status, headers=raw_headers, stream=httpx.ByteStream(body),
                                  extensions={"http_version": b"HTTP/1.1"})
        response.request = httpx.Request("POST", parsed)
        response.read()
        return response

    def post_answer(self, url: str, *, content: bytes, headers: Mapping[str, str] | None = None,
                    timeout: Any = httpx.USE_CLIENT_DEFAULT, extra: Mapping[str, str] | None = None) -> ExportAnswer:
        """``Poster.post_answer``: the request ``post`` would write, the answer as an ``ExportAnswer``.

        ``extra`` (headers that change with every POST, an idempotency key) rides on the cached head,
        so each POST is not a new one. What the cached head cannot carry goes through httpx."""
        if not self._lean(url, content, headers, extra):
            return self._httpx_post(url, content, headers, timeout, extra)
        _parsed, (status, raw_headers, body) = self._exchange(url, content, headers, timeout, extra)
        return ExportAnswer(status, raw_headers, body)

    def _lean(self, url: Any, content: Any, headers: Any, extra: Mapping[str, str] | None) -> bool:
        """Whether the cached head can carry this POST (``_fast``), ``extra`` included (``_appendable``)."""
        return self._fast(url, content, headers, {}) and (not extra or self._appendable(headers, extra))

    def _httpx_post(self, url: str, content: bytes, headers: Mapping[str, str] | None, timeout: Any,
                    extra: Mapping[str, str] | None) -> ExportAnswer:
        """httpx's own ``post`` with ``extra`` merged into ``headers``: a name httpx replaces in place,
        a body that is not ``bytes``, a base URL, a closed client (httpx's error then)."""
        merged = {**(headers or {}), **extra} if extra else headers
        return ExportAnswer.of(super().post(url, content=content, headers=merged, timeout=timeout))

    def _appendable(self, headers: Mapping[str, str] | None, extra: Mapping[str, str]) -> bool:
        """httpx puts a new name after the others, just before the framing; a name it already has
        (the client's defaults, ``headers``) it would replace in place: those take the full path."""
        taken = {name.lower() for name in self.headers} | {name.lower() for name in headers or ()} | {
            "content-length", "transfer-encoding", "host"}
        return all(name.lower() not in taken and name.isascii() and value.isascii() for name, value in extra.items())

    def _fast(self, url: Any, content: Any, headers: Any, kwargs: dict[str, Any]) -> bool:
        return not kwargs and type(content) is bytes and type(url) is str and isinstance(headers, dict | None) \
            and self.base_url.raw_path == b"/" and not self.is_closed

    def _exchange(self, url: str, content: bytes, headers: Mapping[str, str] | None, timeout: Any,
                  extra: Mapping[str, str] | None = None) -> tuple[httpx.URL, Exchanged]:
        key = (url, tuple(headers.items()) if headers else ())
        cached = self._heads.get(key)
        if cached is None:
            cached = self._head(url, headers)
            if len(self._heads) < self._MAX_HEADS:
                self._heads[key] = cached
        parsed, head = cached
        if extra:
            lines = []
            for name, value in extra.items():
                raw_name, raw_value = name.encode("ascii"), value.encode("ascii")
                check_header(raw_name, raw_value)
                lines.append(b"%b: %b\r\n" % (raw_name, raw_value))
            head += b"".join(lines)
        limits = self._default_timeout if timeout is httpx.USE_CLIENT_DEFAULT else httpx.Timeout(timeout).as_dict()
        message = b"%bContent-Length: %d\r\n\r\n%b" % (head, len(content), content)
        return parsed, self._direct.exchange(parsed, message, limits)

    def _head(self, url: str, headers: Mapping[str, str] | None) -> tuple[httpx.URL, bytes]:
        """The request line and headers httpx would write for this POST, checked, without framing."""
        request = self.build_request("POST", url, content=b"", headers=headers)
        message = serialize(request, b"", self._names_ok)
        end = b"Content-Length: 0\r\n\r\n"
        assert message.endswith(end)  # serialize puts the framing last, for every POST
        return request.url, message[: -len(end)]
