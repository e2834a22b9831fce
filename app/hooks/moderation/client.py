"""The Content Safety ``text:analyze`` call (api-version 2023-10-01): one text in, the highest
severity per category out.

A text over 10,000 characters is split (``texts.split_text``) and the parts are checked at once, at
most ``MAX_PARALLEL`` in flight per call, under one deadline (``timeout``) for the whole text. The
request goes through the transport it is given: the gateway's upstream transport, so the egress
proxy choice (``spangate_settings.upstream_proxy`` / ``HTTPS_PROXY``) and the child span of the
gateway span are the ones model calls get.

Every way the service can fail to give a verdict is one ``ServiceMiss`` with a short reason
(``timeout``, ``connect``, ``http_429``, ``http_5xx``, ``http_401``, ``http_4xx``, ``invalid_answer``):
the hook decides between failing open and closed. A miss keeps the verdicts of the parts that did
finish (one of them may already block) and how many parts were never sent before the deadline (the
text was too long to check in time, whatever the service's health). The key is sent in ``Ocp-Apim-Subscription-Key``
and never appears in a message, a log line or a span (the instrumentation records no headers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx
import msgspec

from app.hooks.moderation.settings import CATEGORIES, ContentSafetySettings
from app.hooks.moderation.texts import split_text

API_VERSION = "2023-10-01"
PATH = "/contentsafety/text:analyze"
MAX_PARALLEL = 8  # parts of one text in flight at once: a 1 MB input must not be 100 requests at once
MAX_ANSWER_BYTES = 64 * 1024  # a verdict is a few hundred bytes
MAX_RETRY_AFTER = 60
_encode = msgspec.json.encode
_decode = msgspec.json.decode


class ServiceMiss(Exception):
    """No verdict: ``reason`` is low-cardinality (a metric label), ``retry_after`` the service's hint."""

    def __init__(self, reason: str, *, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.checked: Severities = {}  # the highest severities over the parts that got a verdict
        self.checked_parts = 0
        self.unsent = 0  # parts never sent: the deadline came while they waited for a free slot


Severities = dict[str, int]


class _Run:
    """One text's check as it goes: what the finished parts said, how many parts were sent."""

    def __init__(self) -> None:
        self.merged: Severities = {}
        self.parts = 0
        self.sent = 0

    def add(self, verdict: Severities) -> None:
        self.parts += 1
        for category, severity in verdict.items():
            self.merged[category] = max(severity, self.merged.get(category, 0))

    def miss(self, miss: ServiceMiss, total: int) -> ServiceMiss:
        miss.checked, miss.checked_parts, miss.unsent = self.merged, self.parts, total - self.sent
        return miss


class ContentSafetyClient:
    def __init__(self, settings: ContentSafetySettings, transport: httpx.AsyncBaseTransport) -> None:
        self._settings = settings
        self._transport = transport
        self._url = httpx.URL(f"{settings.endpoint}{PATH}", params={"api-version": API_VERSION})
        self._headers = httpx.Headers({"content-type": "application/json",
                                       "ocp-apim-subscription-key": settings.key})
        self._timeout = httpx.Timeout(settings.timeout).as_dict()
        self._categories = list(CATEGORIES)

    async def analyze(self, text: str) -> tuple[Severities, int]:
        """The highest severity per category over the text's parts, and how many parts it took."""
        parts = split_text(text)
        run = _Run()
        try:
            async with asyncio.timeout(self._settings.timeout):
                await self._all(parts, run)
        except TimeoutError:
            raise run.miss(ServiceMiss("timeout"), len(parts)) from None
        except ServiceMiss as miss:
            raise run.miss(miss, len(parts)) from None
        return run.merged, len(parts)

    async def _all(self, parts: list[str], run: _Run) -> None:
        """Every part, each one to its end (a part that fails does not cancel the others mid-request:
        the deadline bounds them all); the first miss is the answer."""
        if len(parts) == 1:  # the common case, without a task
            run.sent = 1
            run.add(await self._analyze(parts[0]))
            return
        gate = asyncio.Semaphore(MAX_PARALLEL)
        results = await asyncio.gather(*(self._gated(gate, part, run) for part in parts), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _gated(self, gate: asyncio.Semaphore, part: str, run: _Run) -> None:
        async with gate:
            run.sent += 1
            run.add(await self._analyze(part))

    async def _analyze(self, text: str) -> Severities:
        body = _encode({"text": text, "categories": self._categories, "outputType": self._settings.output_type})
        request = httpx.Request("POST", self._url, content=body, headers=self._headers,
                                extensions={"timeout": self._timeout})
        try:
            response = await self._transport.handle_async_request(request)
            try:
                raw = await _read(response)
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            raise ServiceMiss("timeout") from None
        except httpx.HTTPError:
            raise ServiceMiss("connect") from None
        if response.status_code != 200:
            raise ServiceMiss(_status_reason(response.status_code), retry_after=_retry_after(response.headers))
        return parse_answer(raw)


def parse_answer(raw: bytes) -> Severities:
    """``{"categoriesAnalysis": [{"category": "Hate", "severity": 2}, ...]}`` -> ``{"Hate": 2, ...}``."""
    try:
        data = _decode(raw)
    except msgspec.DecodeError:
        raise ServiceMiss("invalid_answer") from None
    analysis = data.get("categoriesAnalysis") if isinstance(data, dict) else None
    if not isinstance(analysis, list):
        raise ServiceMiss("invalid_answer")
    out: Severities = {}
    for item in analysis:
        category = item.get("category") if isinstance(item, Mapping) else None
        severity = item.get("severity") if isinstance(item, Mapping) else None
        if category in CATEGORIES and isinstance(severity, int) and not isinstance(severity, bool):
            out[category] = severity
    if not out:
        raise ServiceMiss("invalid_answer")
    return out


async def _read(response: httpx.Response) -> bytes:
    chunks = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise ServiceMiss("invalid_answer")
        chunks.append(chunk)
    return b"".join(chunks)


def _status_reason(status: int) -> str:
    if status in (401, 403, 429):
        return f"http_{status}"
    return "http_5xx" if status >= 500 else "http_4xx"


def _retry_after(headers: Any) -> int | None:
    value = headers.get("retry-after")
    if value is None or not value.strip().isdigit():
        return None
    return min(int(value), MAX_RETRY_AFTER)
