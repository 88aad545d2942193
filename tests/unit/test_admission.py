"""Connection caps as bookkeeping (``gateway.connection.admission``), without sockets."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.connection.admission import Admission, Cap, Capacity


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


# -- capacity: work admitted by loop lag and queue depth (rules 5 and 6) ----------------


def test_a_node_that_keeps_time_takes_work_up_to_the_memory_bound() -> None:
    capacity = Capacity(max_lag_s=0.05, max_inflight=1000, floor=4)
    capacity.observe(0.01)
    assert capacity.admits(999)  # far past the old fixed 256: the loop keeps up
    assert not capacity.admits(1000)
    assert capacity.refused == 1


def test_a_lagging_node_takes_only_the_floor_until_its_loop_catches_up() -> None:
    capacity = Capacity(max_lag_s=0.05, max_inflight=1000, floor=4)
    capacity.observe(0.2)  # a timer fired 200 ms late
    assert capacity.admits(3) and not capacity.admits(4)
    capacity.observe(0.0)  # the worst lateness halves with each sample: 0.1
    assert not capacity.admits(4)
    capacity.observe(0.0)  # 0.05: not over the limit any more
    assert capacity.admits(500)
    assert capacity.refused == 2


def test_capacity_settings_must_be_positive() -> None:
    for bad in ({"max_lag_s": 0.0}, {"max_inflight": 0}, {"floor": 0}):
        with pytest.raises(ValueError):
            Capacity(**bad)


async def test_the_sampler_measures_how_late_the_loop_wakes() -> None:
    # The clock as the sampler reads it: due 0.001 -> woke on time, due 0.002 -> woke
    # 0.3 s late; then it stands still (never late), and the lag halves per sample.
    readings = iter([0.0, 0.001, 0.001, 0.302])
    lags: list[float] = []
    read = asyncio.Event()
    capacity = Capacity(max_lag_s=0.05)

    def clock() -> float:
        lags.append(capacity.lag_s)
        if len(lags) == 5:
            read.set()
        return next(readings, 0.302)

    task = asyncio.create_task(capacity.sample(0.001, clock=clock))
    await asyncio.wait_for(read.wait(), 5)
    task.cancel()
    assert lags[:4] == [0.0, 0.0, 0.0, 0.0]
    assert lags[4] == pytest.approx(0.3)  # after the late wake-up
    assert capacity.lag_s <= 0.3  # halving since
