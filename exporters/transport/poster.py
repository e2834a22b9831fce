"""What an HTTP exporter needs of its client: one POST of a whole body, and the answer it got.

``Poster`` is that interface. Two kinds implement it: ``ExportClient`` (``exporters.transport.client``),
the lean path every config-file and API-set destination gets, and ``HttpxPoster`` over any other
``httpx.Client``: the config-file destinations' client when ``spangate_settings.upstream_proxy``
sends them through a proxy (httpx's own proxied transports), or a client a test hands in.
``poster_for`` picks one, once, where an exporter is built.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Protocol

import httpx


class Answer(Protocol):
    """What an exporter reads of an answer (``httpx.Response`` has it, ``ExportAnswer`` too)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> httpx.Headers: ...

    @property
    def content(self) -> bytes: ...

    @property
    def text(self) -> str: ...


class Poster(ABC):
    @abstractmethod
    def post_answer(self, url: str, *, content: bytes, headers: Mapping[str, str] | None = None,
                    timeout: Any = httpx.USE_CLIENT_DEFAULT, extra: Mapping[str, str] | None = None) -> Answer:
        """POST ``content`` to ``url``; ``extra``: headers sent as if they ended ``headers`` (one that
        changes with every POST, such as an idempotency key). Raises what the client raises."""


class HttpxPoster(Poster):
    """A ``Poster`` over a plain ``httpx.Client``: one ``client.post`` with ``extra`` merged into
    ``headers``, as any httpx caller would send it."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def post_answer(self, url: str, *, content: bytes, headers: Mapping[str, str] | None = None,
                    timeout: Any = httpx.USE_CLIENT_DEFAULT, extra: Mapping[str, str] | None = None) -> Answer:
        return self.client.post(url, content=content, headers={**(headers or {}), **(extra or {})}, timeout=timeout)


def poster_for(client: httpx.Client) -> Poster:
    """The client itself when it is a ``Poster`` (``ExportClient``), else ``HttpxPoster`` over it."""
    return client if isinstance(client, Poster) else HttpxPoster(client)
