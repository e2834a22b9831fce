"""Callback URLs: parsed and normalised once, and where a destination set through the API may connect.

``normalize_base_url`` is the one parser for base URLs (``langfuse_host`` and every URL var to
come): http(s) only, no userinfo, no query or fragment (a trailing ``#`` or ``?`` would cut off the
path appended to it), host lowercased, and IPv4 shorthand (``127.1``, ``0x7f000001``, ``2130706433``)
rewritten the way ``inet_aton`` and so the connecting socket read it, so a policy sees the real address.

``CallbackPolicy`` is what API-set destinations may reach. Link-local addresses (169.254.0.0/16 with
the cloud metadata service, fe80::/10) and the metadata services outside it (AWS's fd00:ec2::254,
EKS Pod Identity's fd00:ec2::23, Alibaba's 100.100.100.200, Azure's WireServer 168.63.129.16) never,
whatever the settings, nor an IPv4 address wrapped in IPv6 (mapped, translated, compatible, NAT64,
6to4, Teredo) that would be refused bare; loopback and private addresses yes (a self-hosted Langfuse
inside the company network is the common case), unless the operator sets
``spangate_settings.callback_allowed_hosts``. Config-file destinations are the operator's and are not
checked.

A check at API time alone would not hold: a DNS answer can change after it. ``guarded_client`` adds
the check to every connection its client opens: an IP literal is refused before connecting, a name
is connected and the socket's peer address checked before a byte is sent (``DestinationRefused``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from exporters.transport.client import ExportClient
from exporters.transport.http11 import DEFAULT_DEADLINE, ExportTransport

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_HOSTS_SETTING = "spangate_settings.callback_allowed_hosts"
_LINK_LOCAL_METADATA = frozenset(map(ipaddress.ip_address, ("169.254.169.254", "fd00:ec2::254")))
# Metadata services that are not link-local: they answer a VM's credentials like 169.254.169.254 does.
_OTHER_METADATA = frozenset(map(ipaddress.ip_address, ("100.100.100.200", "168.63.129.16", "fd00:ec2::23")))
# IPv6 prefixes that carry an IPv4 address in their last 32 bits, which a translator or the kernel
# connects to: NAT64's well-known prefix (RFC 6052), IPv4-mapped, IPv4-translated (SIIT),
# IPv4-compatible (deprecated, but ::a9fe:a9fe must not read as a harmless IPv6 address).
_LAST_32_BITS = tuple(map(ipaddress.ip_network, ("64:ff9b::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "::/96")))
# NAT64's local-use prefix (RFC 8215): the operator picks a /48 to /96 inside it, so each layout is read.
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")


class DestinationRefused(Exception):
    """A connection the policy does not allow; ``reason`` is short and safe to show an admin."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- parsing --------------------------------------------------------------------------------------


def normalize_base_url(value: Any, var: str) -> str:
    """The canonical form of a base URL; ``ValueError`` names ``var`` and what is wrong (never the value:
    a misplaced credential may be what made it invalid)."""
    if not isinstance(value, str):
        raise ValueError(f"{var} must be an http(s) URL string, not {type(value).__name__}")
    text = value.strip()
    if any(ch.isspace() or not ch.isprintable() or ch == "\\" for ch in text):
        raise ValueError(f"{var} must not contain whitespace, control characters or backslashes")
    if "?" in text or "#" in text:
        raise ValueError(f"{var} is a base URL: it must not have a query or a fragment ('?' or '#')")
    parts = urlsplit(text)
    example = f"{var} must be an http(s) URL such as https://cloud.langfuse.com"
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(example)
    if "@" in parts.netloc:
        raise ValueError(f"{var} must not carry credentials (user:password@)")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"{example} (its port is not 1-65535)")
    host = canonical_host(parts.hostname or "", var)
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{netloc}{'' if port is None else f':{port}'}{parts.path.rstrip('/')}"


def canonical_host(host: str, var: str) -> str:
    """Lowercase name, compressed IPv6, or dotted IPv4 (shorthand and hex/octal forms resolved)."""
    host = host.lower().removesuffix(".")
    address = parse_address(host)
    if address is not None:
        return address.compressed
    if all(_NUMERIC_LABEL.fullmatch(label) for label in host.split(".")):
        raise ValueError(f"{var} has a host that is neither a valid address nor a name")
    if not _HOST_NAME.fullmatch(host):
        raise ValueError(f"{var} has an invalid host name (use the xn-- form for international names)")
    return host


def parse_address(host: str) -> IPAddress | None:
    """An IP literal as the socket layer reads it (``127.1`` is 127.0.0.1); ``None`` for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(_NUMERIC_LABEL.fullmatch(label) for label in host.split(".")):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


# --- the policy -----------------------------------------------------------------------------------


def address_refusal(address: IPAddress) -> str | None:
    """Why no API-set destination may ever connect to ``address``, or ``None``."""
    if isinstance(address, ipaddress.IPv6Address):
        for inner in embedded_ipv4(address):
            reason = _bare_refusal(inner)
            if reason is not None:
                return reason
    return _bare_refusal(address)


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address a translator or tunnel could take ``address`` to mean (often none)."""
    value = int(address)
    found = [ipaddress.IPv4Address(value & 0xFFFFFFFF)] if any(address in net for net in _LAST_32_BITS) else []
    if address in _LOCAL_NAT64:
        # 0.0.0.0 in one layout only means the address uses another (64:ff9b:1::a00:1 is 10.0.0.1)
        found += [inner for length in (48, 56, 64, 96) if not (inner := _rfc6052_ipv4(value, length)).is_unspecified]
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    return found


def _rfc6052_ipv4(value: int, prefix_length: int) -> ipaddress.IPv4Address:
    """The IPv4 address after a NAT64 prefix of ``prefix_length`` bits (RFC 6052 2.2): it skips the
    octet u (bits 64-71), which only a /96 prefix has already passed."""
    octets = value.to_bytes(16, "big")
    if prefix_length <= 64:
        octets = octets[:8] + octets[9:]
    return ipaddress.IPv4Address(octets[prefix_length // 8:prefix_length // 8 + 4])


def _bare_refusal(address: IPAddress) -> str | None:
    if address in _LINK_LOCAL_METADATA:
        return "link-local (cloud metadata)"
    if address in _OTHER_METADATA:
        return "cloud metadata"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified or address.is_multicast:
        return "not a unicast address"
    return None


@dataclass(frozen=True)
class CallbackPolicy:
    """Where API-set callbacks may connect. Empty allow-list: anywhere but the never-allowed ranges."""

    networks: tuple[IPNetwork, ...] = ()
    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()  # from "*.example.com" entries, stored as ".example.com"

    @classmethod
    def from_allowed_hosts(cls, entries: Iterable[str]) -> CallbackPolicy:
        """Host names, ``*.domain`` wildcards or CIDRs; ``ValueError`` names the bad entry's index."""
        networks, names, suffixes = [], set(), []
        for i, entry in enumerate(entries):
            text = entry.strip().lower()
            if text.startswith("*."):
                suffixes.append("." + canonical_host(text[2:], f"{ALLOWED_HOSTS_SETTING}[{i}]"))
                continue
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                names.add(canonical_host(text, f"{ALLOWED_HOSTS_SETTING}[{i}]"))
        return cls(tuple(networks), frozenset(names), tuple(suffixes))

    @property
    def restricted(self) -> bool:
        return bool(self.networks or self.names or self.suffixes)

    def name_allowed(self, host: str) -> bool:
        return host in self.names or host.endswith(self.suffixes)

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why a connection to ``host`` at ``address`` must not carry data, or ``None``."""
        reason = address_refusal(address)
        if reason is None and self.restricted and not self.name_allowed(host) \
                and not any(address in network for network in self.networks):
            reason = f"not in {ALLOWED_HOSTS_SETTING}"
        return reason


async def url_refusal(policy: CallbackPolicy, url: str, *, timeout: float = 2.0) -> str | None:
    """At API time: why a normalised URL may not be set, or ``None``. A name is resolved and each
    address checked, for a clear 400 now; the connection is checked again (DNS may change)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    address = parse_address(host)
    if address is not None:
        return policy.refusal(host, address)
    try:
        infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM), timeout)
    except (OSError, TimeoutError):
        if policy.restricted and not policy.name_allowed(host):
            return f"{host} does not resolve here and is not in {ALLOWED_HOSTS_SETTING}"
        return None  # not resolvable from here yet; the connection is checked when it is made
    reasons = [policy.refusal(host, ipaddress.ip_address(info[4][0].split("%")[0])) for info in infos]
    return next((reason for reason in reasons if reason), None)


# --- the guarded client ---------------------------------------------------------------------------


def guarded_client(policy: CallbackPolicy, **kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` whose every connection is checked; ``kwargs`` as for ``httpx.Client``, and
    ``deadline``: the most one exchange takes (``ExportTransport``).

    Its transport is the exporters' lean one (``ExportTransport``), which calls ``check`` before
    connecting to a literal address and on the connected peer, before TLS and before a byte is sent."""
    verify = kwargs.pop("verify", True)
    limits = kwargs.pop("limits", None)
    idle = limits.max_keepalive_connections if limits is not None and limits.max_keepalive_connections else 16

    def check(host: str, address: IPAddress) -> None:
        reason = policy.refusal(host.lower().removesuffix("."), address)
        if reason is not None:
            raise DestinationRefused(f"address not allowed: {reason}")

    deadline = kwargs.pop("deadline", DEFAULT_DEADLINE)  # the whole exchange (ExportTransport)
    transport = ExportTransport(verify=verify, max_idle_per_host=min(idle, 16), connect_check=check, deadline=deadline)
    return ExportClient(transport=transport, **kwargs)
