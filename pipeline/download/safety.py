"""Which URLs may be fetched: origin allow-list, address rules and DNS pinning.

A ``fileUrl`` arrives in a request anyone can send, so every URL and every
redirect hop passes two gates before a byte is requested:

1. ``SafetyRules.check`` (also ``check_url``): scheme, no credentials in the URL,
   and the origin matches ``allowed_origins``. Plain http only for an origin
   listed with ``http://``.
2. ``SafetyRules.pin``: the host name is resolved here, every address is
   checked (private, loopback, link-local, shared, reserved and multicast
   addresses are refused unless the origin is explicitly trusted; cloud
   metadata addresses always, also in their IPv4-mapped, NAT64,
   IPv4-compatible and 6to4 spellings), and the request is then sent to that very address: the URL's host
   is replaced by the checked IP while the ``Host`` header and the TLS SNI name
   (and so certificate verification) keep the real name. A DNS answer that
   changes between the check and the connection (rebinding) therefore cannot
   redirect the connection: there is no second lookup.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from pipeline.download.errors import TransientFailure, UrlRefused
from pipeline.download.origins import (
    DEFAULT_PORTS,
    IPAddress,
    OriginRule,
    ip_literal,
    normalise_host,
    parse_origin_rules,
)

if TYPE_CHECKING:
    from pipeline.download.policy import DownloadPolicy

Resolver = Callable[[str, int], Awaitable[Sequence[str]] | Sequence[str]]
"""Resolves ``(host, port)`` to IP address strings; sync or async."""

MAX_URL_LENGTH = 8192

# Instance metadata endpoints of the major clouds: refused even for trusted origins,
# because reaching one leaks the machine's credentials.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS pod identity
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)


@dataclass(frozen=True, slots=True)
class Target:
    """A URL that passed the allow-list, with the parts needed to pin it."""

    url: httpx.URL
    host: str
    port: int
    rule: OriginRule
    trusted_private: bool

    @property
    def host_key(self) -> str:
        """The key of the per-host concurrency limit."""
        return f"{self.url.scheme}://{self.host}:{self.port}"


#: NAT64 prefixes (RFC 6052 well-known, RFC 8215 local use): the IPv4 address is the last 32 bits.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 spelling reaches: mapped, NAT64, IPv4-compatible or 6to4."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:
        return ipaddress.IPv4Address(int(address))  # deprecated IPv4-compatible ::a.b.c.d
    return address.sixtofour


def address_problem(address: IPAddress, *, trusted_private: bool) -> str | None:
    """Why connecting to ``address`` is refused, or ``None`` when it is allowed.

    An IPv6 address that embeds an IPv4 one is judged by both: a gateway may
    deliver it to the embedded address.
    """
    embedded = embedded_ipv4(address)
    if embedded is not None:
        problem = address_problem(embedded, trusted_private=trusted_private)
        if problem is not None:
            return f"{problem} (spelled {address})"
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return None  # Python calls every mapped address non-global: judge the IPv4 one only
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    if address.is_multicast or address.is_unspecified:
        return f"{address} is not a unicast address"
    if not address.is_global and not trusted_private:
        kind = (
            "loopback"
            if address.is_loopback
            else "link-local"
            if address.is_link_local
            else "private"
            if address.is_private
            else "non-public"
        )
        return f"{address} is a {kind} address and the origin is not trusted with private addresses"
    return None


class SafetyRules:
    """The allow-list and address rules of one policy, parsed once."""

    def __init__(self, policy: DownloadPolicy):
        self._rules = parse_origin_rules(policy.allowed_origins, field="allowed_origins")
        self._private = parse_origin_rules(policy.private_origins, field="private_origins")

    def check(self, url: str | httpx.URL) -> Target:
        """Check scheme, credentials and origin; raise ``UrlRefused`` or return the target."""
        text = str(url)
        if len(text) > MAX_URL_LENGTH:
            raise UrlRefused(text[:200] + "...", f"URL longer than {MAX_URL_LENGTH} characters")
        if any(ord(c) < 0x21 or c == "\\" for c in text):
            raise UrlRefused(text, "URL contains whitespace, control characters or backslashes")
        try:
            parsed = httpx.URL(text)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise UrlRefused(text, f"not a valid URL ({exc})") from exc
        shown = str(parsed.copy_with(username=None, password=None))
        if parsed.scheme not in DEFAULT_PORTS:
            raise UrlRefused(shown, f"scheme {parsed.scheme!r} is not http or https")
        if parsed.userinfo:
            # Never echo the credentials themselves.
            raise UrlRefused(shown, "URL carries credentials (user:password@)")
        host = normalise_host(parsed.raw_host.decode("ascii"))
        if not host:
            raise UrlRefused(shown, "URL has no host")
        port = parsed.port or DEFAULT_PORTS[parsed.scheme]
        rule = next((r for r in self._rules if r.matches(parsed.scheme, host, port)), None)
        if rule is None:
            origin = f"{parsed.scheme}://{host}:{port}"
            raise UrlRefused(shown, f"origin {origin} is not in allowed_origins")
        literal = ip_literal(host)
        trusted = (not rule.pattern and literal is not None) or any(
            r.matches(parsed.scheme, host, port) for r in self._private
        )
        if literal is not None:
            # Listing an IP literal trusts it with private addresses, never with metadata ones.
            problem = address_problem(literal, trusted_private=trusted)
            if problem is not None:
                raise UrlRefused(shown, problem)
        return Target(url=parsed, host=host, port=port, rule=rule, trusted_private=trusted)

    async def pin(self, target: Target, resolver: Resolver) -> str:
        """Resolve the target's host, check every address, and return the one to connect to."""
        literal = ip_literal(target.host)
        if literal is not None:
            problem = address_problem(literal, trusted_private=target.trusted_private)
            if problem is not None:
                raise UrlRefused(str(target.url), problem)
            return str(literal)
        try:
            answer = resolver(target.host, target.port)
            addresses = list(await answer if inspect.isawaitable(answer) else answer)
        except OSError as exc:
            raise TransientFailure(f"cannot resolve {target.host}: {exc}") from exc
        if not addresses:
            raise TransientFailure(f"cannot resolve {target.host}: no addresses")
        parsed: list[IPAddress] = []
        for text in addresses:
            address = ip_literal(text)
            if address is None:
                raise UrlRefused(str(target.url), f"resolver returned a non-address {text!r}")
            # Refuse the whole name when any answer is bad: a mixed answer is a rebinding tell.
            problem = address_problem(address, trusted_private=target.trusted_private)
            if problem is not None:
                raise UrlRefused(str(target.url), f"{target.host} resolves to {problem}")
            parsed.append(address)
        return str(parsed[0])


def check_url(url: str, policy: DownloadPolicy) -> None:
    """Raise ``UrlRefused`` when the policy would never fetch ``url`` (no DNS lookup).

    Cheap enough for a webhook receiver; the address rules are applied again,
    after resolution, when the file is fetched.
    """
    SafetyRules(policy).check(url)


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the system resolver, without blocking the event loop."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


def pinned_request_parts(
    target: Target, address: str
) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """The URL to connect to, the headers and the request extensions that pin ``address``."""
    # httpx's netloc already omits a default port, as a Host header should.
    host_header = target.url.netloc.decode("ascii")
    url = target.url.copy_with(host=address)
    extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
    return url, {"Host": host_header}, extensions
