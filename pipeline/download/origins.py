"""Allow-list entries for download origins, parsed without the network stack.

The download policy checks its origin lists when it is built, and every
command builds it from the config file: this module keeps that check free of
httpx, so a command that never downloads does not load it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from pipeline.errors import ConfigError

DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class OriginRule:
    """One allow-list entry: an exact origin, or a host pattern ``*.suffix``."""

    text: str
    scheme: str
    host: str
    port: int
    pattern: bool

    def matches(self, scheme: str, host: str, port: int) -> bool:
        """Whether a URL's scheme, host and port fall under this entry."""
        if scheme != self.scheme or port != self.port:
            return False
        if self.pattern:
            return host.endswith("." + self.host)
        return host == self.host


def normalise_host(host: str) -> str:
    """A host as compared: no brackets, no trailing dot, lower case."""
    return host.strip("[]").rstrip(".").lower()


def ip_literal(host: str) -> IPAddress | None:
    """The address a host spells literally (a zone index dropped), else ``None``."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def parse_origin_rules(entries: Iterable[str], *, field: str) -> list[OriginRule]:
    """Parse allow-list entries; a malformed entry raises ``ConfigError`` naming it."""
    rules = []
    for text in entries:
        entry = text.strip()
        scheme = "https"
        hostport = entry
        if "://" in entry:
            parts = urlsplit(entry)
            if parts.scheme not in DEFAULT_PORTS:
                raise ConfigError(f"download.{field} entry {text!r}: scheme must be http or https")
            if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
                raise ConfigError(
                    f"download.{field} entry {text!r}: give an origin only "
                    "(scheme://host[:port]), without path, query or credentials"
                )
            scheme, hostport = parts.scheme, parts.netloc
        try:
            parsed = urlsplit(f"{scheme}://{hostport}")
            port = parsed.port or DEFAULT_PORTS[scheme]
        except ValueError as exc:
            raise ConfigError(f"download.{field} entry {text!r}: {exc}") from exc
        host = normalise_host(parsed.hostname or "")
        pattern = host.startswith("*.")
        if pattern:
            host = host[2:]
        if not host or "*" in host or "/" in host or (pattern and "." not in host):
            raise ConfigError(
                f"download.{field} entry {text!r}: expected scheme://host[:port] or *.domain"
            )
        rules.append(OriginRule(text=text, scheme=scheme, host=host, port=port, pattern=pattern))
    return rules
