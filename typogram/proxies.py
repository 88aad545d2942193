"""Which address a request came from, trusting ``X-Forwarded-For`` only from our proxies.

Rules: the peer's address is the client's unless the peer is a trusted proxy
(``trusted_proxies``: addresses or CIDR networks). Then ``X-Forwarded-For`` is
read from the right, each trusted hop skipped, and the first address that is
not a trusted proxy is the client's; the left end when every hop is trusted.
An entry that is not an IP address stops the walk at the last good hop, so
a forged or garbled header never yields an address the proxies did not see.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """Parse ``trusted_proxies``; raises ``ValueError`` naming a bad entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"not an IP address or network: {entry!r}") from exc
    return tuple(networks)


def _parsed(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address.strip())
    except ValueError:
        return None


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    parsed = _parsed(address)
    return parsed is not None and any(parsed in network for network in networks)


def client_address(peer: str, forwarded_for: str | None, networks: Sequence[Network]) -> str:
    """The client's address under the rules above."""
    if not forwarded_for or not _trusted(peer, networks):
        return peer
    client = peer
    for hop in reversed(forwarded_for.split(",")):
        if _parsed(hop) is None:
            break
        client = hop.strip()
        if not _trusted(client, networks):
            break
    return client
