"""Connection caps as bookkeeping (``gateway.admission``), without sockets."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from gateway.admission import Admission, Cap


@dataclass
class FakeSession:
    id: str
    link: object | None


def caps(before: int = 2, ip: int = 3, user: int = 2) -> Admission:
    return Admission(per_ip_before_hello=before, per_ip=ip, per_user=user)


def test_sockets_waiting_for_hello_are_capped_per_address() -> None:
    admission = caps()
    assert admission.admit("a") is None and admission.admit("a") is None
    assert admission.admit("a") is Cap.IP_BEFORE_HELLO
    assert admission.admit("b") is None  # per address
    admission.greeted("a")
    assert admission.admit("a") is None
    assert admission.admit("a") is Cap.IP_BEFORE_HELLO
    assert admission.refused == {"ip_before_hello": 2, "ip": 0, "user": 0}


def test_all_sockets_of_an_address_are_capped_and_freed_on_release() -> None:
    admission = caps()
    for _ in range(3):
        assert admission.admit("a") is None
        admission.greeted("a")
    assert admission.admit("a") is Cap.IP
    admission.release("a", greeted=True)
    assert admission.admit("a") is None
    admission.release("a", greeted=False)
    assert admission.statistics()["sockets"] == 2
    assert admission.statistics()["before_hello"] == 0


def test_the_per_user_cap_counts_attached_sessions_but_not_the_one_resumed() -> None:
    admission = caps(user=2)
    attached = [FakeSession("s1", object()), FakeSession("s2", object())]
    detached = [FakeSession("s3", None)]
    assert admission.user_over([*attached, *detached], None)
    assert not admission.user_over([*attached, *detached], "s1")
    assert not admission.user_over(attached[:1] + detached, None)
    assert admission.refused["user"] == 1
    assert admission.message(Cap.USER) == "too many connections: ws_max_connections_per_user = 2"


@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from(["admit", "greet", "close"]))))
def test_counts_never_go_negative_nor_past_the_caps(steps: list[tuple[str, str]]) -> None:
    admission = caps(before=2, ip=3)
    live: dict[str, list[bool]] = {"a": [], "b": [], "c": []}  # greeted? per socket
    for address, action in steps:
        sockets = live[address]
        if action == "admit" and admission.admit(address) is None:
            sockets.append(False)
        elif action == "greet" and False in sockets:
            sockets[sockets.index(False)] = True
            admission.greeted(address)
        elif action == "close" and sockets:
            admission.release(address, greeted=sockets.pop())
        assert len(sockets) <= 3 and sockets.count(False) <= 2
    stats = admission.statistics()
    assert stats["sockets"] == sum(len(s) for s in live.values())
    assert stats["before_hello"] == sum(s.count(False) for s in live.values())
