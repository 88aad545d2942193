"""Connection caps as bookkeeping (``gateway.connection.admission``), without sockets."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from gateway.connection.admission import Admission, Cap


@dataclass
class FakeSession:
    id: str
    link: object | None


def caps(before: int = 2, ip: int = 3, user: int = 2) -> Admission:
    return Admission(per_ip_before_hello=before, per_ip=ip, per_user=user)


def test_sockets_waiting_for_hello_are_capped_per_address() -> None:
    admission = caps()
    first, second, third = object(), object(), object()
    assert admission.admit(first, "a") is None and admission.admit(second, "a") is None
    assert admission.admit(third, "a") is Cap.IP_BEFORE_HELLO
    assert admission.address_of(third) is None  # refused: not counted
    assert admission.admit(object(), "b") is None  # per address
    admission.greeted(first)
    admission.greeted(first)  # twice: no effect
    assert admission.admit(third, "a") is None
    assert admission.admit(object(), "a") is Cap.IP_BEFORE_HELLO
    assert admission.refused == {"ip_before_hello": 2, "ip": 0, "user": 0}
    assert admission.address_of(first) == "a"


def test_all_sockets_of_an_address_are_capped_and_freed_on_release() -> None:
    admission = caps()
    sockets = [object() for _ in range(3)]
    for socket in sockets:
        assert admission.admit(socket, "a") is None
        admission.greeted(socket)
    assert admission.admit(object(), "a") is Cap.IP
    admission.release(sockets[0])
    admission.release(sockets[0])  # twice: no effect
    admission.release(object())  # never admitted: no effect
    late = object()
    assert admission.admit(late, "a") is None
    admission.release(late)  # gone before its hello
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


@given(
    st.lists(
        st.tuples(
            st.sampled_from("abc"),
            st.sampled_from(["admit", "greet", "close"]),
            st.integers(0, 3),
        )
    )
)
def test_counts_never_go_negative_nor_past_the_caps(steps: list[tuple[str, str, int]]) -> None:
    admission = caps(before=2, ip=3)
    live: dict[str, dict[object, bool]] = {"a": {}, "b": {}, "c": {}}  # socket -> greeted?
    for address, action, pick in steps:
        sockets = live[address]
        chosen = list(sockets)[pick % len(sockets)] if sockets else object()
        if action == "admit":
            socket = object()
            if admission.admit(socket, address) is None:
                sockets[socket] = False
        elif action == "greet":
            admission.greeted(chosen)
            if chosen in sockets:
                sockets[chosen] = True
        else:
            admission.release(chosen)
            sockets.pop(chosen, None)
        assert len(sockets) <= 3 and list(sockets.values()).count(False) <= 2
    stats = admission.statistics()
    assert stats["sockets"] == sum(len(s) for s in live.values())
    assert stats["before_hello"] == sum(list(s.values()).count(False) for s in live.values())
