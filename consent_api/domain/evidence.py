"""Evidence kept with each decision, minimised: a network prefix, never a full IP address."""

from __future__ import annotations

import hashlib
import ipaddress
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=4096)  # clients repeat; parsing cost ~10 us of every logged request
def ip_prefix(address: str | None) -> str | None:
    """IPv4 /24 or IPv6 /48 in CIDR form; None when absent or unparsable."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    bits = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def user_agent_sha256(user_agent: str | None) -> str | None:
    if not user_agent:
        return None
    return hashlib.sha256(user_agent.encode("utf-8")).hexdigest()


def evidence(address: str | None, user_agent: str | None, gpc: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {"ip_prefix": ip_prefix(address), "user_agent_sha256": user_agent_sha256(user_agent)}
    if gpc:
        data["gpc"] = True
    return data
