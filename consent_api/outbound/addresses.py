"""Where a webhook may be sent (DESIGN.md §9.1, SSRF): ``https`` only, to hosts whose every
address is public, unless the operator allows private receivers (then ``http`` too).

A host is checked after DNS, at registration and again at every delivery, and the delivery
connects to an address checked here (never resolving twice), so a name that later resolves to
127.0.0.1 or to the cloud metadata address (169.254.169.254) reaches nothing. IPv6 forms that
carry an IPv4 address (mapped ::ffff:a.b.c.d, 6to4, NAT64 64:ff9b::/96, Teredo) are judged by
the IPv4 address inside.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
NAT64 = ipaddress.ip_network("64:ff9b::/96")

Resolve = Callable[[str, int], list[str]]  # (host, port) -> addresses


class Refused(ValueError):
    """A URL or an address a webhook may not be sent to; the message says why."""


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str  # as written (a name, or an address without brackets)
    port: int
    path: str  # path and query, as sent in the request line


def parse(url: str, allow_private: bool) -> Target:
    """The URL's parts, or Refused: https (http too when private receivers are allowed), a
    host, no user:password@, no fragment."""
    if len(url) > MAX_URL_LENGTH:
        raise Refused(f"at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise Refused("no spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"not a URL: {exc}") from exc
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        raise Refused("must be an https URL" if not allow_private else "must be an http or https URL")
    if not parts.hostname:
        raise Refused("needs a host")
    if parts.username is not None or parts.password is not None:
        raise Refused("must not carry a user name or password")
    if parts.fragment or url.endswith("#"):
        raise Refused("must not carry a #fragment")
    default = 443 if parts.scheme == "https" else 80
    if port == 0:
        raise Refused("port 0 is not a port")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, parts.scheme, parts.hostname, port or default, path)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(address: str) -> bool:
    """A globally routable unicast address: not private, loopback, link-local, shared (CGNAT),
    multicast, reserved, documentation or unspecified, in either family."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            return is_public(str(inner))
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local
                                 or ip.is_private or ip.is_unspecified)


def system_resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"host {host!r} does not resolve") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def vetted(target: Target, allow_private: bool, resolve: Resolve = system_resolve) -> list[str]:
    """The addresses to connect to: every one public, else Refused (unless private receivers are allowed)."""
    try:
        addresses = [str(ipaddress.ip_address(target.host))]  # a literal address: no DNS
    except ValueError:
        addresses = resolve(target.host, target.port)
    if not addresses:
        raise Refused(f"host {target.host!r} does not resolve")
    if not allow_private:
        private = [a for a in addresses if not is_public(a)]
        if private:
            raise Refused(f"host {target.host!r} has a private, loopback or link-local address ({private[0]}); "
                          "webhooks go to public addresses only")
    return addresses


def check(url: str, allow_private: bool, resolve: Resolve = system_resolve) -> None:
    """Registration: Refused unless url may receive webhooks. With private receivers allowed
    nothing is resolved (the receiver may not be up yet)."""
    target = parse(url, allow_private)
    if not allow_private:
        vetted(target, allow_private, resolve)
