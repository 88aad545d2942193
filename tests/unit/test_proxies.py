"""``typogram.proxies``: X-Forwarded-For counts only from trusted proxies."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from typogram.proxies import client_address, trusted_networks

TRUSTED = trusted_networks(["10.0.0.0/8", "192.168.1.1", "::1"])


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        ("203.0.113.5", "192.0.2.99", "203.0.113.5"),  # untrusted peer: header ignored
        ("10.0.0.2", "192.0.2.99", "192.0.2.99"),
        ("10.0.0.2", "192.0.2.99, 10.0.0.9", "192.0.2.99"),  # two proxies of ours
        ("10.0.0.2", "6.6.6.6, 192.0.2.99", "192.0.2.99"),  # the client forged the left part
        ("10.0.0.2", "garbage, 192.0.2.99", "192.0.2.99"),
        ("10.0.0.2", "192.0.2.99, garbage", "10.0.0.2"),  # nothing good past our proxy
        ("10.0.0.2", "10.0.0.7", "10.0.0.7"),  # every hop ours: the left end
        ("10.0.0.2", "", "10.0.0.2"),
        ("::1", "2001:db8::5", "2001:db8::5"),
        ("", "192.0.2.99", ""),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(
    peer: str, header: str, expected: str
) -> None:
    assert client_address(peer, header, TRUSTED) == expected


@given(st.ip_addresses(), st.text(max_size=100))
def test_an_untrusted_peer_is_always_the_answer(
    peer: IPv4Address | IPv6Address, header: str
) -> None:
    assume(not any(peer in network for network in TRUSTED if network.version == peer.version))
    assert client_address(str(peer), header, TRUSTED) == str(peer)


@given(st.text(max_size=200))
def test_no_header_crashes_the_walk(header: str) -> None:
    assert isinstance(client_address("10.1.1.1", header, TRUSTED), str)


def test_a_bad_entry_is_named() -> None:
    with pytest.raises(ValueError, match="nope"):
        trusted_networks(["10.0.0.0/8", "nope"])
