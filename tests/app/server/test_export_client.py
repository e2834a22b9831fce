"""The config-file destinations' client (``app.server.factory.export_client``): which ``Poster``
their exporters get, with and without ``spangate_settings.upstream_proxy``."""

from __future__ import annotations

import httpx

from app.server.factory import export_client
from exporters.transport.client import ExportClient
from exporters.transport.poster import HttpxPoster, poster_for

LIMITS = httpx.Limits(max_connections=4)


def test_direct_destinations_post_on_the_lean_client() -> None:
    with export_client("direct", LIMITS, 1.0) as client:
        assert isinstance(client, ExportClient) and poster_for(client) is client


def test_proxied_destinations_post_through_httpx_own_proxied_transports() -> None:
    with export_client("http://127.0.0.1:3128", LIMITS, 1.0) as client:
        poster = poster_for(client)
        assert not isinstance(client, ExportClient)
        assert isinstance(poster, HttpxPoster) and poster.client is client
