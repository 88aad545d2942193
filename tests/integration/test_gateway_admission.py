"""Connection caps on a live gateway: 429 at the handshake per address, 4029 per user.

Reproduces row 7 of the security review (300 sockets that never said hello
and 200 sockets on one guest token, all from one address, were all
accepted) with the default caps, then checks each cap's edges.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.integration.test_gateway import (
    TIMEOUT,
    Node,
    Start,
    _until,
    closed_with,
    hello,
    recv,
    send,
    start_node,
)
from typogram.settings import Settings

__all__ = ["start_node"]
REFUSED = "typogram_gateway_connections_refused_total"


async def _refused_at_handshake(node: Node) -> str:
    with pytest.raises(InvalidStatus) as raised:
        await connect(node.url, open_timeout=TIMEOUT)
    response = raised.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"]
    return response.body.decode()


async def _sockets(node: Node, count: int) -> list[ClientConnection]:
    return [await connect(node.url, open_timeout=TIMEOUT) for _ in range(count)]


async def until(predicate: Callable[[], bool]) -> None:
    await asyncio.wait_for(_until(predicate), TIMEOUT)


async def _close_all(sockets: list[ClientConnection]) -> None:
    await asyncio.gather(*(ws.close() for ws in sockets))


async def test_sockets_that_never_say_hello_are_capped_per_address(start_node: Start) -> None:
    node = await start_node(ws_hello_timeout_s=5.0)
    cap = Settings().ws_max_connections_per_ip_before_hello
    silent = await _sockets(node, cap)
    body = await _refused_at_handshake(node)
    assert f"ws_max_connections_per_ip_before_hello = {cap}" in body
    assert node.metric(REFUSED, cap="ip_before_hello") == 1
    await send(silent[0], "hello", {"token": node.token("ada")}, id=1)  # no longer waiting
    assert (await recv(silent[0]))["t"] == "welcome"
    late = await connect(node.url, open_timeout=TIMEOUT)
    await _refused_at_handshake(node)
    await late.close()
    await until(lambda: node.gateway.statistics()["admission_before_hello"] == cap - 1)
    await _close_all(silent)
    await until(lambda: node.gateway.statistics()["admission_sockets"] == 0)
    again = await connect(node.url, open_timeout=TIMEOUT)  # closing frees the address
    await again.close()


async def test_a_timed_out_hello_frees_its_place(start_node: Start) -> None:
    node = await start_node(ws_max_connections_per_ip_before_hello=1, ws_hello_timeout_s=0.3)
    first = await connect(node.url, open_timeout=TIMEOUT)
    await _refused_at_handshake(node)
    assert await closed_with(first) == 4001
    await until(lambda: node.gateway.statistics()["admission_sockets"] == 0)
    await (await connect(node.url, open_timeout=TIMEOUT)).close()


async def test_sockets_per_address_are_capped_after_hello_too(start_node: Start) -> None:
    node = await start_node(ws_max_connections_per_ip=4)
    household = [(await hello(node, f"member{n}"))[0] for n in range(4)]
    body = await _refused_at_handshake(node)
    assert "ws_max_connections_per_ip = 4" in body
    assert node.metric(REFUSED, cap="ip") == 1
    await household[0].close()
    await until(lambda: node.gateway.statistics()["admission_sockets"] == 3)
    household[0], _ = await hello(node, "member0")
    await _close_all(household)


async def test_one_user_gets_at_most_the_per_user_cap_of_sockets(start_node: Start) -> None:
    node = await start_node()
    cap = Settings().ws_max_connections_per_user
    tabs = [(await hello(node, "ada"))[0] for _ in range(cap)]
    extra = await connect(node.url, open_timeout=TIMEOUT)
    await send(extra, "hello", {"token": node.token("ada")}, id=1)
    refused = await recv(extra)
    assert refused["t"] == "error" and refused["re"] == 1
    assert refused["d"]["code"] == "too_many_connections"
    assert f"ws_max_connections_per_user = {cap}" in refused["d"]["message"]
    assert await closed_with(extra) == 4029
    assert node.metric(REFUSED, cap="user") == 1
    other, _ = await hello(node, "bob")  # another user behind the same address is fine
    await _close_all([*tabs, other])


async def test_resuming_ones_own_session_replaces_a_socket(start_node: Start) -> None:
    node = await start_node(ws_max_connections_per_user=1)
    first, welcome = await hello(node, "ada")
    second = await connect(node.url, open_timeout=TIMEOUT)
    resume = {"session": welcome["d"]["session"], "seq": 0}
    await send(second, "hello", {"token": node.token("ada"), "resume": resume}, id=1)
    again = await recv(second)
    assert again["t"] == "welcome" and again["d"]["resumed"] is True
    assert await closed_with(first) == 4002
    await second.close()


async def test_the_defaults_fit_a_household_behind_one_address(start_node: Start) -> None:
    node = await start_node()
    sockets = []
    for n in range(20):  # 20 people, two tabs each
        for _ in range(2):
            sockets.append((await hello(node, f"person{n}"))[0])
    assert node.metric(REFUSED, cap="ip") == 0
    with contextlib.suppress(Exception):
        await _close_all(sockets)


async def _from(node: Node, forwarded: str) -> ClientConnection:
    headers = {"X-Forwarded-For": forwarded}
    return await connect(node.url, open_timeout=TIMEOUT, additional_headers=headers)


async def test_behind_a_trusted_proxy_each_client_is_counted_on_its_own(
    start_node: Start,
) -> None:
    node = await start_node(ws_max_connections_per_ip=2, trusted_proxies=("127.0.0.1/32",))
    first = [await _from(node, "203.0.113.1"), await _from(node, "10.9.9.9, 203.0.113.1")]
    with pytest.raises(InvalidStatus) as raised:
        await _from(node, "203.0.113.1")
    assert raised.value.response.status_code == 429
    other = await _from(node, "198.51.100.7")  # another client behind the same proxy
    await _close_all([*first, other])


async def test_a_forwarded_header_from_an_untrusted_peer_counts_for_nothing(
    start_node: Start,
) -> None:
    node = await start_node(ws_max_connections_per_ip=2)
    first = [await _from(node, "203.0.113.1"), await _from(node, "203.0.113.2")]
    with pytest.raises(InvalidStatus):
        await _from(node, "203.0.113.3")  # all three are 127.0.0.1
    await _close_all(first)
