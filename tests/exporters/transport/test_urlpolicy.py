"""``exporters.transport.urlpolicy``: one parser for base URLs, the address policy, and the client that checks
the address it actually connected to (against loopback sinks only)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from exporters.transport.urlpolicy import (
    CallbackPolicy,
    DestinationRefused,
    address_refusal,
    guarded_client,
    normalize_base_url,
    url_refusal,
)
from tests.support.sinks import HttpSink

VAR = "langfuse_host"


@pytest.mark.parametrize(("given", "normal"), [
    ("http://127.1:3000", "http://127.0.0.1:3000"),
    ("http://0x7f000001/", "http://127.0.0.1"),
    ("http://2130706433/base/", "http://127.0.0.1/base"),
    ("http://0177.0.0.1", "http://127.0.0.1"),
    ("http://0xa9fea9fe", "http://169.254.169.254"),
    ("  HTTPS://Cloud.Langfuse.COM./  ", "https://cloud.langfuse.com"),
    ("http://[::1]:4000", "http://[::1]:4000"),
    ("http://[0:0:0:0:0:0:0:1]", "http://[::1]"),
])
def test_urls_are_normalised_to_the_address_a_socket_would_use(given: str, normal: str) -> None:
    assert normalize_base_url(given, VAR) == normal
    assert normalize_base_url(normal, VAR) == normal  # idempotent: config parsing runs it again


@pytest.mark.parametrize(("given", "why"), [
    ("http://h/v1/chat/completions#", "query or a fragment"),
    ("http://h/x?", "query or a fragment"),
    ("http://h/?a=b", "query or a fragment"),
    ("http://user:pw@h", "credentials"),
    ("http://user@h", "credentials"),
    ("ftp://h", "http(s) URL"),
    ("http://h:0", "port"),
    ("http://h:70000", "port"),
    ("http://999.1", "neither a valid address nor a name"),
    ("http://h\\@evil", "backslashes"),
    ("http://h/a b", "whitespace"),
    ("http://caf\u00e9.example", "xn--"),
])
def test_a_bad_base_url_is_refused_naming_the_var(given: str, why: str) -> None:
    with pytest.raises(ValueError, match=VAR) as info:
        normalize_base_url(given, VAR)
    assert why in str(info.value)
    assert "pw" not in str(info.value)


@pytest.mark.parametrize(("address", "reason"), [
    ("169.254.169.254", "link-local (cloud metadata)"),
    ("169.254.0.1", "link-local"),
    ("fe80::1", "link-local"),
    ("fd00:ec2::254", "link-local (cloud metadata)"),
    ("::ffff:169.254.169.254", "link-local (cloud metadata)"),
    ("64:ff9b::a9fe:a9fe", "link-local (cloud metadata)"),
    ("0.0.0.0", "not a unicast address"),
    ("100.100.100.200", "cloud metadata"), ("168.63.129.16", "cloud metadata"), ("fd00:ec2::23", "cloud metadata"),
    ("::ffff:100.100.100.200", "cloud metadata"),
    ("::ffff:0:a9fe:a9fe", "link-local (cloud metadata)"),  # IPv4-translated (SIIT)
    ("::a9fe:a9fe", "link-local (cloud metadata)"),  # IPv4-compatible
    ("2002:a9fe:a9fe::1", "link-local (cloud metadata)"),  # 6to4
    ("2001:0:4136:e378:8000:63bf:5601:5601", "link-local (cloud metadata)"),  # Teredo, client bits inverted
    # NAT64 local use (RFC 8215): the address after a /96, /64, /56 and /48 prefix
    ("64:ff9b:1::a9fe:a9fe", "link-local (cloud metadata)"),
    ("64:ff9b:1:0:a9:fea9:fe00:0", "link-local (cloud metadata)"),
    ("64:ff9b:1:a9:fe:a9fe::", "link-local (cloud metadata)"),
    ("64:ff9b:1:a9fe:a9:fe00::", "link-local (cloud metadata)"),
    ("64:ff9b:1::a00:1", None), ("64:ff9b:1:a00:1::", None), ("2002:a00:1::1", None),
    ("100.100.100.100", None), ("168.63.129.17", None),
    ("127.0.0.1", None), ("::1", None), ("10.1.2.3", None), ("192.168.0.9", None), ("fd12::1", None),
])
def test_link_local_is_never_allowed_loopback_and_private_are(address: str, reason: str | None) -> None:
    assert address_refusal(ipaddress.ip_address(address)) == reason


def test_the_allow_list_takes_names_wildcards_and_cidrs() -> None:
    policy = CallbackPolicy.from_allowed_hosts(["Langfuse.Internal", "*.corp.example", "10.0.0.0/8"])
    ip = ipaddress.ip_address
    assert policy.refusal("langfuse.internal", ip("192.168.1.2")) is None
    assert policy.refusal("lf.corp.example", ip("192.168.1.2")) is None
    assert policy.refusal("other.example", ip("10.9.8.7")) is None
    assert policy.refusal("other.example", ip("192.168.1.2")) == "not in spangate_settings.callback_allowed_hosts"
    assert policy.refusal("langfuse.internal", ip("169.254.169.254")) == "link-local (cloud metadata)"
    with pytest.raises(ValueError, match=r"callback_allowed_hosts\[1\]"):
        CallbackPolicy.from_allowed_hosts(["ok.example", "bad host"])


def test_url_refusal_resolves_names_and_reads_literals() -> None:
    allow_ten = CallbackPolicy.from_allowed_hosts(["10.0.0.0/8"])
    assert asyncio.run(url_refusal(CallbackPolicy(), "http://169.254.169.254")) == "link-local (cloud metadata)"
    assert asyncio.run(url_refusal(CallbackPolicy(), "http://localhost:9")) is None
    assert asyncio.run(url_refusal(allow_ten, "http://localhost:9")) == \
        "not in spangate_settings.callback_allowed_hosts"


# --- the connection itself ------------------------------------------------------------------------


@pytest.fixture
def sink() -> Iterator[HttpSink]:
    with HttpSink() as running:
        yield running


def post(policy: CallbackPolicy, url: str, **extensions: Any) -> httpx.Response:
    with guarded_client(policy, timeout=5, trust_env=False) as client:
        return client.post(url, content=b"span", extensions=extensions)


def test_an_allowed_destination_gets_the_request(sink: HttpSink) -> None:
    assert post(CallbackPolicy(), sink.url + "/v1/traces").status_code == 200
    port = sink.url.rsplit(":", 1)[1]
    assert post(CallbackPolicy.from_allowed_hosts(["localhost"]), f"http://localhost:{port}/x").status_code == 200
    assert [r.path for r in sink.requests] == ["/v1/traces", "/x"]


def test_the_peer_address_is_checked_before_anything_is_sent(sink: HttpSink) -> None:
    # "localhost" is not on the list by name: only where it really connected decides, not a lookup
    # made earlier (which an attacker's DNS could answer differently).
    port = sink.url.rsplit(":", 1)[1]
    with pytest.raises(DestinationRefused, match="address not allowed: not in spangate_settings"):
        post(CallbackPolicy.from_allowed_hosts(["10.0.0.0/8"]), f"http://localhost:{port}/x")
    assert sink.requests == []


def test_a_refused_literal_is_not_even_connected() -> None:
    events: list[str] = []
    with pytest.raises(DestinationRefused, match="link-local"):
        post(CallbackPolicy(), "http://169.254.169.254:9/x", trace=lambda name, _info: events.append(name))
    assert not [e for e in events if e.startswith("connection.connect_tcp")]
